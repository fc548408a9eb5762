"""LoRA training, the versioned core-self adapter registry, export to Ollama/vLLM.

Empty until the LoRA issue lands.
"""
