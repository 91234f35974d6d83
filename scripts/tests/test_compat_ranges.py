"""Every plugin's declared SUPPORTED_VLLM range agrees with the committed compatibility matrix.

Reads docs/compatibility.json (written by `make matrix`); boots nothing. A version whose tests
passed must lie inside the plugin's range, a version whose tests failed outside it.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import tomllib
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from vllm_ref_common import version_in_range

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("vllm_ref_matrix", ROOT / "scripts" / "matrix.py")
assert _spec is not None and _spec.loader is not None
matrix = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(matrix)


def vllm_entry_points(pkg: Path) -> list[str]:
    """The package's entry points in vLLM's groups: the packages that are plugins."""
    data = tomllib.loads((pkg / "pyproject.toml").read_text())
    groups = data.get("project", {}).get("entry-points", {})
    return [f"{g}:{n}" for g, eps in groups.items() if g.startswith("vllm.") for n in eps]


def disagreements(supported: str, results: dict[str, dict]) -> list[str]:
    """Cells of one plugin's matrix row that contradict its declared range."""
    bad = []
    for version, cell in sorted(results.items()):
        inside = version_in_range(version, supported)
        if cell["status"] == "pass" and not inside:
            bad.append(f"vLLM {version} passed but lies outside {supported}")
        elif cell["status"] == "fail" and inside:
            first = (cell.get("failed") or ["?"])[0]
            bad.append(f"vLLM {version} lies inside {supported} but failed ({first})")
    return bad


PLUGINS = [p for p in matrix.plugin_dirs() if vllm_entry_points(p)]


def test_disagreements_finds_both_directions() -> None:
    results = {"0.28.0": {"status": "fail", "failed": ["t::x"]}, "0.30.0": {"status": "pass"},
               "0.32.0": {"status": "pass"}}
    assert disagreements(">=0.30,<0.34", results) == []
    assert disagreements(">=0.28,<0.34", results) == [
        "vLLM 0.28.0 lies inside >=0.28,<0.34 but failed (t::x)"]
    assert disagreements(">=0.30,<0.32", results) == ["vLLM 0.32.0 passed but lies outside >=0.30,<0.32"]


def test_matrix_json_is_committed_and_covers_the_releases() -> None:
    data = json.loads(matrix.JSON_PATH.read_text())
    assert set(matrix.VERSIONS) <= set(data["versions"]), "run `make matrix` for every release"
    assert data["plugins"], "the matrix holds no plugin; run `make matrix`"


@pytest.mark.parametrize("pkg", PLUGINS, ids=[p.name for p in PLUGINS])
def test_declared_range_agrees_with_matrix(pkg: Path) -> None:
    supported = matrix.declared_range(pkg)
    assert supported, (f"{pkg.name}: declares {vllm_entry_points(pkg)} but no SUPPORTED_VLLM constant "
                       f"in src/*/__init__.py (e.g. SUPPORTED_VLLM = \">=0.28,<0.34\")")
    try:
        SpecifierSet(supported)
    except InvalidSpecifier:
        pytest.fail(f"{pkg.name}: SUPPORTED_VLLM = {supported!r} is not a PEP 440 specifier set")
    data = json.loads(matrix.JSON_PATH.read_text())
    row = data["plugins"].get(pkg.name)
    if row is None:
        pytest.skip(f"{pkg.name} is not in docs/compatibility.json yet; run `make matrix`")
    assert row["results"], f"{pkg.name}: the matrix row is empty"
    assert disagreements(supported, row["results"]) == [], f"{pkg.name}: range and matrix disagree"
