"""Models that PyPI packages ship: where each one is, assembled and checked once."""

from mem.models.packaged import (
    PACKAGED_GGUF,
    PackagedGGUF,
    PackagedModelError,
    models_dir,
    packaged_gguf,
)

__all__ = ["PACKAGED_GGUF", "PackagedGGUF", "PackagedModelError", "models_dir", "packaged_gguf"]
