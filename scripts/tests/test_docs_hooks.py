"""The mkdocs hooks: navigation from the pages that exist, repository links made plain."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("vllm_ref_docs_hooks", ROOT / "docs" / "hooks" / "nav.py")
assert _spec is not None and _spec.loader is not None
hooks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hooks)


def _write(root: Path, *paths: str) -> None:
    for p in paths:
        (root / p).parent.mkdir(parents=True, exist_ok=True)
        (root / p).write_text(f"# {p}\n")


def test_nav_lists_existing_pages_in_order_and_keeps_the_rest(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    _write(docs, "index.md", "troubleshooting.md", "plugins/b.md", "plugins/a.md", "zzz.md", "hooks/x.md")
    assert hooks.build_nav(docs) == [
        {"Home": "index.md"},
        {"Plugins": ["plugins/a.md", "plugins/b.md"]},
        {"Troubleshooting": "troubleshooting.md"},
        {"More": ["zzz.md"]},
    ]


def test_links_to_repository_files_become_paths_and_broken_links_stay(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    _write(docs, "index.md", "other.md")
    _write(tmp_path, "kernels/README.md")
    md = ("See [the kernels](../kernels/README.md#top), [other](other.md), [gone](../nope.md), "
          "[web](https://example.org/a.md) and ![img](../kernels/README.md).")
    out = hooks.repo_links(md, docs / "index.md", docs)
    assert out == ("See the kernels (`kernels/README.md`), [other](other.md), [gone](../nope.md), "
                   "[web](https://example.org/a.md) and ![img](../kernels/README.md).")
