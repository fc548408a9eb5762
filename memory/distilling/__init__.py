"""Distillation, the one meaning of "distill" here: turning a home's memory into a core-self
adapter. datasets: novelty scores, the selection and the SFT dataset built from it (with the
distill package), and its export; training: `mem distill`, which trains, evaluates and
promotes the LoRA (with the adapters package)."""
