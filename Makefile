# Lambda Desk — one entry point. Every target installs what it needs itself.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
export UV_PROJECT_ENVIRONMENT := $(VENV)
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help env lint fmt test soak demo bench clean

# Area targets (api, openapi, synth, size-check, deploy, stream) live in mk/*.mk.
-include mk/*.mk

help:
	@echo "make demo   run the desk's demo on embedded defaults (report in reports/demo/)"
	@echo "make test   lint + the whole test suite (creates the environment from nothing)"
	@echo "make bench  kernels against reference libraries, timed in the same run"
	@echo "make soak   property tests at full counts"
	@echo "make lint   ruff + mypy;  make fmt  format the code"

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet "uv==$(UV_VERSION)"

# The locked environment; re-synced whenever the lock or the project file changes.
$(VENV)/.synced: $(UV) uv.lock pyproject.toml
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

env: $(VENV)/.synced

lint: env
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

fmt: env
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: lint size-check
	$(PY) -m pytest -q -n 2 -m "not aws and not soak"

soak: env
	HYPOTHESIS_PROFILE=soak $(PY) -m pytest -q -n 2 -m "not aws"

demo: env
	$(PY) -m desk.cli demo

bench: env
	$(PY) -m benchmarks.run $(BENCH)

clean:
	rm -rf $(VENV) $(TOOLS) reports .pytest_cache .mypy_cache .ruff_cache
