"""mkdocs hook: the site navigation, built from the pages that exist.

Pages come from several authors and land at different times; strict mode fails on a nav entry
whose file is missing, so the order is fixed here and only existing pages are listed. Pages not
named below (a new plugin guide, say) still appear: plugins/*.md under "Plugins", anything
else under "More".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

ORDER = [
    ("Home", "index.md"),
    ("Architecture", "architecture.md"),
    ("Harness", "harness.md"),
    ("Plugins", "plugins/"),
    ("Examples", "examples.md"),
    ("Kernels", "kernels.md"),
    ("Vendor guide", "vendor-guide.md"),
    ("Compatibility", "compatibility.md"),
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


def on_config(config: Any, **kwargs: Any) -> Any:
    if not config.get("nav"):
        config["nav"] = build_nav(Path(config["docs_dir"]))
    return config
