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


def test_kernels_compile_for_hopper() -> None:
    # The interpreter accepts some code the compiler rejects: compile every kernel for sm_90 too.
    # Also pins the design's key properties: tensor-core MMAs, async copies, no register spills.
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    code = "import json, compile_check; print(json.dumps(compile_check.main([])))"
    proc = subprocess.run([sys.executable, "-c", code],
                          capture_output=True, text=True, timeout=600, env=env, cwd=BENCH)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {r["kernel"].split(" ")[0] + " " + r["kernel"].split(" ")[1]: r
            for r in json.loads(proc.stdout.strip().splitlines()[-1])}
    assert not [r for r in rows.values() if "error" in r], rows
    assert rows["prefill d128"]["wgmma"] > 0 and rows["prefill d128"]["cp_async"] > 0
    assert rows["decode d128"]["mma"] > 0 and rows["decode d128"]["cp_async"] > 0
    assert all(r["stack"] == 0 for r in rows.values()), rows
