"""The one list of code the examples copy from the repository's packages, and the guard that
keeps every copied definition equal to its original.

Examples must install without this repository (a user copies the folder and runs
`pip install .`), so where an example's point is code the repository has, it carries a copy.
Only one does: examples/patch's `patching.py`, a cut-down patching framework. Its definitions
listed here are the original's word for word; the rest of that file is its own (one patch per
method). After changing an original definition, copy it again (the failure message says which).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# copy -> (original, the top-level definitions the copy holds word for word)
VENDORED: dict[str, tuple[str, list[str]]] = {
    "examples/patch/src/vllm_example_patch/patching.py": (
        "plugins/vllm-ref-common/src/vllm_ref_common/patching.py",
        ["PatchError", "PatchDriftError", "override", "add", "_signature_drift"]),
}


def definitions(path: Path) -> dict[str, str]:
    """name -> source text of each top-level function and class of a module."""
    text = path.read_text()
    return {node.name: ast.get_source_segment(text, node) or ""
            for node in ast.parse(text).body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}


@pytest.mark.parametrize("copy", sorted(VENDORED))
def test_vendored_definitions_equal_their_originals(copy: str) -> None:
    original, names = VENDORED[copy]
    mine, theirs = definitions(ROOT / copy), definitions(ROOT / original)
    for name in names:
        assert name in theirs, f"{original} no longer defines {name}: update VENDORED in examples/test_vendored.py"
        assert mine.get(name) == theirs[name], f"{copy}: {name} drifted from {original}: copy it again"

