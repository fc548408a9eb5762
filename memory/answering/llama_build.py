"""Is the installed llama.cpp the portable build?

`python -m mem.memory.answering.llama_build` checks.

pip compiles llama-cpp-python with `-march=native` unless told otherwise. On CPUs with AMX
(Intel Sapphire Rapids and later) that build repacks quantized weights into AMX buffers and
the first decode segfaults; a native build from an AVX-512 machine also dies with "illegal
instruction" on an AVX2 laptop. `make install` builds for AVX2/FMA/F16C (see the Makefile),
and this check, run by the install and the tests, fails loudly if a native build slipped in
(from pip's wheel cache, or a plain `pip install llama-cpp-python`).
"""

from __future__ import annotations

import re
import sys

# Features that only a native build of a newer CPU turns on: their presence means -march=native.
NATIVE_ONLY = ("AVX512", "AMX", "AVX_VNNI")
REBUILD = (
    'CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON '
    '-DGGML_BMI2=ON -DLLAVA_BUILD=OFF" pip install --force-reinstall --no-deps --no-cache-dir '
    "llama-cpp-python==0.3.36"
)


def compiled_features() -> dict[str, bool]:
    """The CPU features llama.cpp was compiled with, from its own system info line."""
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode("utf-8", "replace")
    return {name: value == "1" for name, value in re.findall(r"([A-Z0-9_]+) = (\d)", info)}


def native_features(features: dict[str, bool]) -> list[str]:
    """The enabled features that a portable build never has."""
    return sorted(f for f, on in features.items() if on and f.startswith(NATIVE_ONLY))


def main() -> int:
    features = compiled_features()
    native = native_features(features)
    enabled = " ".join(f for f, on in features.items() if on)
    if native:
        print(
            f"llama.cpp was built for this CPU only ({', '.join(native)}): it crashes on AMX "
            f"CPUs and on CPUs without these features. Rebuild it with:\n  {REBUILD}",
            file=sys.stderr,
        )
        return 1
    if not features.get("AVX2"):
        print(f"llama.cpp was built without AVX2 and will be slow: {enabled}", file=sys.stderr)
    print(f"llama.cpp: portable build ({enabled})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
