"""mkdocs hooks: the site navigation, built from the pages that exist, and links into the repo.

Pages come from several authors and land at different times; strict mode fails on a nav entry
whose file is missing, so the order is fixed here and only existing pages are listed. Pages not
named below (a new plugin guide, say) still appear: plugins/*.md under "Plugins", anything
else under "More".

A page may link to a file of the repository outside docs/ (`[README](../kernels/README.md)`):
that reads well on GitHub but is not part of the site, so such links become the file's
repository path in code. Links to files that exist nowhere stay links, and strict mode fails
on them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

_LINK = re.compile(r"(?<!!)\[([^\]]+)\]\(([^)\s#]+)(#[^)\s]*)?\)")

ORDER = [
    ("Home", "index.md"),
    ("Install", "install.md"),
    ("Architecture", "architecture.md"),
    ("Harness", "harness.md"),
    ("Plugins", "plugins/"),
    ("Kernels", "kernels.md"),
    ("Vendor guide", "vendor-guide.md"),
    ("Ray", "ray.md"),
    ("Compatibility", "compatibility.md"),
    ("Benchmarks", "benchmarks.md"),
    ("Troubleshooting", "troubleshooting.md"),
]


def build_nav(docs: Path) -> list[Any]:
    pages = sorted(p.relative_to(docs).as_posix() for p in docs.rglob("*.md")
                   if "hooks" not in p.relative_to(docs).parts)
    nav: list[Any] = []
    used: set[str] = set()
    for title, path in ORDER:
        if path.endswith("/"):
            section = [p for p in pages if p.startswith(path)]
            # The folder's index.md, if any, first; the rest by file name.
            section.sort(key=lambda p: (not p.endswith("/index.md"), p))
            if section:
                nav.append({title: section})
                used.update(section)
        elif path in pages:
            nav.append({title: path})
            used.add(path)
    rest = [p for p in pages if p not in used]
    if rest:
        nav.append({"More": rest})
    return nav


def repo_links(markdown: str, page_path: Path, docs: Path) -> str:
    repo = docs.parent

    def swap(m: re.Match[str]) -> str:
        target = m.group(2)
        if "://" in target or target.startswith(("mailto:", "/")):
            return m.group(0)
        resolved = (page_path.parent / target).resolve()
        if resolved.is_relative_to(docs.resolve()) or not resolved.exists():
            return m.group(0)
        rel = resolved.relative_to(repo.resolve()).as_posix()
        return m.group(1) if m.group(1).strip("`") == rel else f"{m.group(1)} (`{rel}`)"

    return _LINK.sub(swap, markdown)


def on_page_markdown(markdown: str, page: Any, config: Any, **kwargs: Any) -> str:
    docs = Path(config["docs_dir"])
    return repo_links(markdown, docs / page.file.src_path, docs)


def on_config(config: Any, **kwargs: Any) -> Any:
    if not config.get("nav"):
        config["nav"] = build_nav(Path(config["docs_dir"]))
    return config
