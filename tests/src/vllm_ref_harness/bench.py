"""What every plugin's benchmark script prints and records the same way: the machine a run was
measured on, and its ratios merged into the figures file that `scripts/plot_bench.py` draws."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    """The CPU, the cores this process may use and the load average now (call it at the end)."""
    return (f"{cpu_name()}, {len(os.sched_getaffinity(0))} cores (load average at the end "
            f"{os.getloadavg()[0]:.1f})")


def record_figures(path: Path, figures: dict[str, dict[str, Any]]) -> None:
    """Merge `figures` into the JSON file at `path`, keeping every other benchmark's entries."""
    recorded = json.loads(path.read_text()) if path.is_file() else {}
    recorded.update(figures)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n")
