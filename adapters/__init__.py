"""LoRA training, the versioned core-self adapter registry, export to Ollama/vLLM.

    base_model  the base model: packaged GGUF -> cached fp32 copy, local folder, hub id
    data        dataset folders -> chat examples, tokens with assistant-only labels
    train       the peft training loop (fp32 LoRA on CPU, QLoRA on CUDA), checkpoints, plots
    evaluate    validation loss, answers in four arms (base/adapter, closed-book/RAG), promotion
    control     the general-knowledge control set that shows forgetting
    registry    adapters/<name>/vNNNN + the atomic `current` pointer
    pipeline    one distillation run; load_for_inference() for answering with an adapter
    export      peft | merged | ollama | vllm

Nothing here imports torch/transformers/peft at module level; they load inside functions.
"""

import warnings

# transformers 5 warns on every peft load that peft calls a renamed method; it says nothing a
# user of `mem ask --adapter` can act on.
warnings.filterwarnings(
    "ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning
)

__all__ = ["load_for_inference"]


def __getattr__(name: str):
    # Loaded on first use, so that the export registry the CLI reads stays a light import.
    if name == "load_for_inference":
        from mem.adapters.pipeline import load_for_inference

        return load_for_inference
    raise AttributeError(f"module 'mem.adapters' has no attribute {name!r}")
