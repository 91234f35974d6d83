"""Every plugin's declared SUPPORTED_VLLM range agrees with the committed compatibility matrix.

Reads docs/compatibility.json (written by `make matrix`); boots nothing. The rule is the
harness's (`python -m vllm_ref_harness.matrix check`): a version whose tests passed must lie
inside the plugin's range, a version whose tests failed outside it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from vllm_ref_harness import matrix

ROOT = Path(__file__).resolve().parents[2]
JSON_PATH = ROOT / matrix.DEFAULT_JSON
PLUGINS = [p for p in sorted(ROOT.glob("plugins/*"))
           if (p / "pyproject.toml").is_file() and matrix.vllm_entry_points(p)]


def test_disagreements_finds_both_directions() -> None:
    results = {"0.28.0": {"status": "fail", "failed": ["t::x"]}, "0.30.0": {"status": "pass"},
               "0.32.0": {"status": "pass"}}
    assert matrix.disagreements(">=0.30,<0.34", results) == []
    assert matrix.disagreements(">=0.28,<0.34", results) == [
        "vLLM 0.28.0 lies inside >=0.28,<0.34 but failed (t::x)"]
    assert matrix.disagreements(">=0.30,<0.32", results) == ["vLLM 0.32.0 passed but lies outside >=0.30,<0.32"]


def test_matrix_json_covers_the_hatch_matrix_releases() -> None:
    data = json.loads(JSON_PATH.read_text())
    releases = matrix.hatch_matrix_versions(ROOT)
    assert set(releases) <= set(data["versions"]), f"run `make matrix` for {set(releases) - set(data['versions'])}"
    assert data["plugins"], "the matrix holds no plugin; run `make matrix`"


@pytest.mark.parametrize("pkg", PLUGINS, ids=[p.name for p in PLUGINS])
def test_declared_range_agrees_with_matrix(pkg: Path) -> None:
    data = json.loads(JSON_PATH.read_text())
    name = matrix.project_name(pkg)
    if name not in data["plugins"] and matrix.declared_range(pkg):
        pytest.skip(f"{name} is not in docs/compatibility.json yet; "
                    f"run `make matrix MATRIX_PLUGINS=plugins/{pkg.name}`")
    assert matrix.problems(pkg, data) == []
