"""The benchmark runs at tiny size: --dry-run makes the model and every boot's spec, boots nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_kv.py"


def test_bench_dry_run(tmp_path):
    out = subprocess.run([sys.executable, str(BENCH), "--dry-run", "--lengths", "64,128", "--rounds", "1",
                          "--record", str(tmp_path / "figures.json")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "bench_kv (dry run)" in out.stdout and "'miss', 'restart', 'none', 'example'" in out.stdout
    assert not (tmp_path / "figures.json").exists()
