"""The compatibility-matrix report: a session's cell file, the merge, the table, the range check.

Real pytest sessions in a throwaway project (no engine): the harness's pytest plugin is loaded
through its entry point, as in any project that depends on the harness.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from vllm_ref_common.gate import vllm_version
from vllm_ref_harness import matrix

PYPROJECT = """\
[project]
name = "demo-plugin"
version = "0.1.0"

[project.entry-points."vllm.general_plugins"]
demo = "demo_plugin:register"
"""
TESTS = """\
import pytest

def test_ok():
    pass

def test_broken():
    assert 1 == 2

def test_skipped():
    pytest.skip("not here")
"""


def make_project(root: Path, supported: str = ">=0.28,<0.34", tests: str = TESTS) -> Path:
    (root / "src" / "demo_plugin").mkdir(parents=True)
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / "src" / "demo_plugin" / "__init__.py").write_text(f'SUPPORTED_VLLM = "{supported}"\n')
    (root / "tests").mkdir()
    (root / "tests" / "test_demo.py").write_text(tests)
    return root


def pytest_session(project: Path, results: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", str(project), "-p", "no:cacheprovider",
                           f"--matrix-results={results}", "--rootdir", str(project)],
                          cwd=project, capture_output=True, text=True, timeout=300)


def test_a_session_writes_its_cell(tmp_path: Path) -> None:
    project = make_project(tmp_path / "proj")
    r = pytest_session(project, tmp_path / "results")
    assert r.returncode == 1, r.stdout + r.stderr
    version = vllm_version()
    cell = json.loads((tmp_path / "results" / f"demo-plugin@{version}.json").read_text())
    assert (cell["plugin"], cell["vllm"], cell["status"]) == ("demo-plugin", version, "fail")
    assert (cell["passed"], cell["skipped"], cell["mode"]) == (1, 1, "full")
    assert [f.rsplit("::", 1)[1] for f in cell["failed"]] == ["test_broken"]


def test_an_interrupted_session_writes_nothing(tmp_path: Path) -> None:
    project = make_project(tmp_path / "proj", tests="def test_stop():\n    raise KeyboardInterrupt\n")
    r = pytest_session(project, tmp_path / "results")
    assert r.returncode == 2, r.stdout + r.stderr
    assert not (tmp_path / "results").exists() or not list((tmp_path / "results").iterdir())


def cell(plugin: str, vllm: str, status: str, started: str) -> dict:
    return {"plugin": plugin, "vllm": vllm, "status": status, "passed": 3, "failed": [] if status == "pass"
            else ["t.py::x"], "skipped": 0, "mode": "full", "duration_s": 60.0, "started": started, "run": started,
            "commit": "abc1234", "machine": "test box"}


def test_merge_keeps_other_cells_and_the_newest_of_each() -> None:
    data = {"versions": [], "plugins": {}, "runs": []}
    assert matrix.merge(data, [cell("p", "0.30.0", "pass", "2026-11-01 10:00"),
                               cell("p", "0.28.0", "fail", "2026-11-01 10:05")]) == 2
    # A rerun of one cell replaces only that cell; an older file never wins; a file merged twice is a no-op.
    assert matrix.merge(data, [cell("p", "0.30.0", "fail", "2026-11-02 09:00")]) == 1
    assert matrix.merge(data, [cell("p", "0.30.0", "pass", "2026-10-01 09:00"),
                               cell("p", "0.30.0", "fail", "2026-11-02 09:00")]) == 0
    row = data["plugins"]["p"]["results"]
    assert (row["0.28.0"]["status"], row["0.30.0"]["status"]) == ("fail", "fail")
    assert data["versions"] == ["0.28.0", "0.30.0"]
    assert [r["started"] for r in data["runs"]] == ["2026-11-01 10:00", "2026-11-01 10:05", "2026-11-02 09:00"]


def test_render_keeps_the_prose_around_the_markers(tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    (results / "p@0.32.0.json").write_text(json.dumps(cell("p", "0.32.0", "pass", "2026-11-01 10:00")))
    md = tmp_path / "page.md"
    md.write_text(f"# My page\n\nbefore\n\n{matrix.BEGIN}\nold table\n{matrix.END}\n\nafter\n")
    assert matrix.main(["render", "--results", str(results), "--json", str(tmp_path / "c.json"), "--md", str(md),
                        "--projects"]) == 0
    text = md.read_text()
    assert text.startswith("# My page\n\nbefore\n") and text.endswith(f"{matrix.END}\n\nafter\n")
    assert "old table" not in text and "| p | `none declared` | pass: 3 passed, 0 skipped" in text
    assert "\n## Compatibility matrix\n" in text  # one level below the page's title


def test_check_names_the_plugin_and_the_contradicting_release(tmp_path: Path, capsys) -> None:
    project = make_project(tmp_path / "proj", supported=">=0.30,<0.34")
    data = {"versions": ["0.28.0", "0.30.0"], "plugins": {"demo-plugin": {"results": {
        "0.28.0": cell("demo-plugin", "0.28.0", "pass", "x"), "0.30.0": cell("demo-plugin", "0.30.0", "pass", "x")}}}}
    (tmp_path / "c.json").write_text(json.dumps(data))
    assert matrix.main(["check", "--json", str(tmp_path / "c.json"), "--projects", str(project)]) == 1
    out = capsys.readouterr().out
    assert "demo-plugin: vLLM 0.28.0 passed but lies outside >=0.30,<0.34" in out
    (project / "src" / "demo_plugin" / "__init__.py").write_text("")
    assert matrix.problems(project, data)[0].startswith("demo-plugin: declares ['vllm.general_plugins:demo'] but no "
                                                        "SUPPORTED_VLLM")


def test_plan_lists_every_release_of_the_hatch_matrix(tmp_path: Path, capsys) -> None:
    project = make_project(tmp_path / "proj")
    (project / "hatch.toml").write_text('[[envs.matrix.matrix]]\nvllm = ["0.30.0", "0.32.0"]\n')
    assert matrix.main(["plan", "--hatch-project", str(project), "--projects", str(project)]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan == {"include": [{"vllm": v, "project": str(project)} for v in ("0.30.0", "0.32.0")]}


def test_a_collection_error_is_a_failing_cell_not_an_interruption(tmp_path: Path) -> None:
    project = make_project(tmp_path / "proj", tests="import no_such_module_here\n")
    r = pytest_session(project, tmp_path / "results")
    assert r.returncode == 2, r.stdout + r.stderr  # pytest's code for both
    cell = json.loads(next((tmp_path / "results").glob("demo-plugin@*.json")).read_text())
    assert cell["status"] == "fail" and cell["failed"] == ["tests/test_demo.py (collection error)"], cell
