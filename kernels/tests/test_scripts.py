"""The GPU check and benchmark scripts, end to end in their --tiny mode on the interpreter.

A GPU session runs them once with the full shapes; this keeps them working in between. They run
in a subprocess: the scripts set TRITON_INTERPRET for their own process only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU runs the full scripts, not --tiny")
def test_gpu_check_and_benchmark_tiny(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    proc = subprocess.run([sys.executable, str(BENCH / "gpu_check.py"), "--tiny", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    check = json.loads((tmp_path / "check.json").read_text())
    assert check["rows"] and all(r["ok"] for r in check["rows"])
    assert {r["case"] for r in check["rows"]} >= {"decode gqa4", "mixed window softcap", "reshape_and_cache"}
    bench = json.loads((tmp_path / "bench.json").read_text())
    ours = [r for r in bench["rows"] if r["impl"] == "ours"]
    assert [r["case"].split()[0] for r in ours] == ["prefill", "decode", "mixed"]
    assert all(r["relerr"] < 1e-5 and r["ms"] > 0 for r in ours)
    assert any(line.startswith("decode B2 ctx64: ours") for line in bench["summary"])
