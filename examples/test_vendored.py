"""The one list of files the examples vendor from the repository's packages, and the guard
that keeps every copy equal to its original.

Examples must install without this repository (a user copies the folder and runs
`pip install .`), so the version gate, process roles and the patching framework are copied into
them rather than depended on. A copy may differ from its original only by the import lines
named here; after changing an original, copy it again (the failure message says which).
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMMON = "plugins/vllm-ref-common/src/vllm_ref_common"
PATCHING = f"{COMMON}/patching.py"
PATCHING_IMPORT = ("from .gate import version_in_range, vllm_version, warn_once\nfrom .roles import process_roles",
                   "from ._gate import version_in_range, vllm_version, warn_once\nfrom ._roles import process_roles")

# copy -> (original, [(line in the original, its replacement in the copy)])
VENDORED: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "examples/custom_model/src/vllm_example_custom_model/_gate.py": (f"{COMMON}/gate.py", []),
    "examples/general_plugin/src/vllm_example_general_plugin/_gate.py": (f"{COMMON}/gate.py", []),
    "examples/endpoint_plugin/src/vllm_example_endpoint_plugin/_gate.py": (f"{COMMON}/gate.py", []),
    "examples/io_processor/src/vllm_example_io_processor/_gate.py": (f"{COMMON}/gate.py", []),
    "examples/platform/src/vllm_example_platform/_gate.py": (f"{COMMON}/gate.py", []),
    "examples/patch/src/vllm_example_patch/_gate.py": (f"{COMMON}/gate.py", []),
    "examples/patch/src/vllm_example_patch/_roles.py": (f"{COMMON}/roles.py", []),
    "examples/patch/src/vllm_example_patch/patching.py": (PATCHING, [PATCHING_IMPORT]),
}


@pytest.mark.parametrize("copy", sorted(VENDORED))
def test_vendored_copy_equals_its_original(copy: str) -> None:
    original, substitutions = VENDORED[copy]
    want = (ROOT / original).read_text()
    for old, new in substitutions:
        assert old in want, f"{original} no longer has the line {old!r} that {copy} replaces"
        want = want.replace(old, new)
    assert (ROOT / copy).read_text() == want, (
        f"{copy} drifted from {original}: copy it again" + (" and redo the import lines listed in "
                                                            "examples/test_vendored.py" if substitutions else ""))


def test_every_underscored_module_of_an_example_is_listed() -> None:
    # A new vendored file must be guarded too: the examples' private modules are all copies.
    found = {str(p.relative_to(ROOT)) for p in ROOT.glob("examples/*/src/*/_*.py") if p.name != "__init__.py"}
    assert found == set(VENDORED) - {"examples/patch/src/vllm_example_patch/patching.py"}
