"""Every make target and command the root README names runs, in its quickest form.

A module moved or renamed under a target that nothing else runs (as `make bench` once broke on
the removed scripts/matrix.py) fails here. The quickest forms boot no engine: the demo and the
benchmarks import and wire everything with --dry-run, the matrix reads hatch's environments and
re-renders the committed results (the tree stays as it was), `make test-fast` and `make test-long`
collect one folder.
Three targets run for real elsewhere, so here make only shows their commands (`make -n`): `.ci/run`
runs `make lint` and `make docs` before `make test`, and tests/integration/test_readmes.py runs
`make dist`'s script and installs from its wheels. About 1 minute on 2 cores, most of it vLLM
imports.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# target or command -> its quickest form, and a line its output must hold.
SMOKE: dict[str, tuple[str, str]] = {
    "make install": ("make install", "install: "),
    "make demo": ("make demo DEMO_ARGS=--dry-run", "demo (dry run): would serve"),
    "make test": ("make -n test", "-m pytest"),
    # One folder's collection, not the whole tree's (~15 s each, mostly imports): the run around
    # this test has already collected every test, and the targets' own flags are what is at stake.
    "make test-fast": ("make test-fast PYTEST_ARGS='--collect-only -q scripts/tests'", "tests collected"),
    "make test-long": ("make test-long PYTEST_ARGS='--collect-only -q scripts/tests/test_example_matrix.py'",
                       "test_example_project_runs_one_matrix_cell"),
    "make lint": ("make -n lint", "-m mypy"),
    "make bench": ("make bench BENCH_DRY_RUN=1", "plot_bench (dry run):"),
    "make matrix": ("make matrix MATRIX_DRY_RUN=1", "0 problem(s)"),
    "make docs": ("make -n docs", "mkdocs build --strict"),
    "make dist": ("make -n dist", "scripts/dist.sh dist"),
    "make facts": ("make facts", ""),
    "python -m vllm_ref_common doctor": (".venv/bin/python -m vllm_ref_common doctor", "problem(s)"),
}


def named_in_readme() -> set[str]:
    text = (ROOT / "README.md").read_text()
    targets = {f"make {t}" for t in re.findall(r"`make ([a-z][\w-]*)", text)}
    targets |= {f"make {t}" for t in re.findall(r"^make ([a-z][\w-]*)", text, re.M)}
    commands = {f"python -m {m}" for m in re.findall(r"python -m (vllm_ref_\w+ \w+)", text)}
    return targets | commands


def test_every_target_and_command_the_readme_names_has_a_smoke_run() -> None:
    missing = named_in_readme() - set(SMOKE)
    assert not missing, f"the README names {sorted(missing)}: give each its quickest form in SMOKE"


def _tracked_state() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                          text=True).stdout


@pytest.mark.parametrize("name", sorted(SMOKE))
def test_runs(name: str) -> None:
    cmd, expect = SMOKE[name]
    before = _tracked_state()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "VLLM_"))}
    r = subprocess.run(["bash", "-c", cmd], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    out = r.stdout + r.stderr
    assert r.returncode == 0, f"`{cmd}` ({name}) failed with {r.returncode}:\n{out[-4000:]}"
    assert expect in out, f"`{cmd}` ({name}) printed no {expect!r}:\n{out[-2000:]}"
    # The quickest forms measure and record nothing: a figure or a page they rewrote would be wrong.
    assert _tracked_state() == before, f"`{cmd}` ({name}) changed tracked files"
