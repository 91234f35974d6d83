"""Entry points for one boot only: a folder for a server's PYTHONPATH that declares entry points
of code already installed (a package's `testing` module, say), without building anything.

A test plugin shipped as a module of the package it tests needs no project of its own: this
writes the one thing Python's entry-point discovery reads, a `.dist-info` folder with METADATA
and entry_points.txt. Kept out of the dev venv, so the entry point loads only where a test puts
the folder on a process's PYTHONPATH.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path


def entry_point_site(site: str | Path, dist: str, entry_points: dict[str, dict[str, str]],
                     version: str = "0.0.0") -> Path:
    """Write distribution `dist` into the folder `site`, declaring `entry_points`
    ({group: {name: "module:attr"}}), and return the folder. What `site` held of `dist` is
    replaced, so a folder can be reused across runs."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", dist):
        raise ValueError(f"vllm-ref-harness: entry_point_site: dist {dist!r} is not a distribution name; "
                         f"accepted: letters, digits, '.', '_', '-'")
    for group, names in entry_points.items():
        for name, value in names.items():
            if not re.fullmatch(r"[\w.]+:[\w.]+", value):
                raise ValueError(f"vllm-ref-harness: entry_point_site: entry point {group}:{name} = {value!r}; "
                                 f"accepted: 'module:attribute'")
    folder = Path(site)
    stem = re.sub(r"[-_.]+", "_", dist)
    info = folder / f"{stem}-{version}.dist-info"
    for old in folder.glob(f"{stem}-*.dist-info"):
        shutil.rmtree(old)
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = []
    for group, names in entry_points.items():
        lines.append(f"[{group}]")
        lines += [f"{name} = {value}" for name, value in names.items()]
        lines.append("")
    (info / "entry_points.txt").write_text("\n".join(lines))
    return folder
