"""LoRA training, the versioned core-self adapter registry, export to Ollama/vLLM.

    base_model  the base model: packaged GGUF -> cached fp32 copy, local folder, hub id
    data        dataset folders -> chat examples, tokens with assistant-only labels
    train       the peft training loop (fp32 LoRA on CPU, QLoRA on CUDA), checkpoints, plots
    evaluate    validation loss, closed-book answers (EM / token F1 / recall), promotion rule
    registry    adapters/<name>/vNNNN + the atomic `current` pointer
    pipeline    one distillation run; load_for_inference() for answering with an adapter
    export      peft | merged | ollama | vllm

Nothing here imports torch/transformers/peft at module level; they load inside functions.
"""

from mem.adapters.pipeline import load_for_inference

__all__ = ["load_for_inference"]
