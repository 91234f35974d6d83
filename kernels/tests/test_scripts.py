"""The device run (bench/gpu_run.py) end to end in its --tiny mode, and the sm_90 compile check.

A GPU session runs gpu_run.py once with the full shapes; these keep every step of it working in
between, including what only a GPU reaches: nvidia-smi and compute-sanitizer are faked on PATH,
the full-size plan is built as a dry run, and the summary's goals are fed GPU-shaped rows. The
scripts run in subprocesses: they set TRITON_INTERPRET for their own process only.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
ENV = {k: v for k, v in os.environ.items() if k not in ("TRITON_INTERPRET", "OUT")}


@pytest.fixture(scope="module")
def shim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """vLLM's kernel copied out of the installed vLLM, as `make kernels-gpu-prep` builds it."""
    where = tmp_path_factory.mktemp("anchors")
    vllm_dir = Path(importlib.util.find_spec("vllm").origin).parent
    subprocess.run(["bash", str(BENCH / "make_vllm_shim.sh"), str(vllm_dir)], cwd=where, check=True,
                   capture_output=True)
    return where / ".anchors" / "shim"


def gpu_run(*args: str, path_dirs: list[Path] = ()) -> subprocess.CompletedProcess:
    env = dict(ENV, PATH=os.pathsep.join([*map(str, path_dirs), ENV["PATH"]]))
    return subprocess.run([sys.executable, str(BENCH / "gpu_run.py"), *args], capture_output=True, text=True,
                          timeout=600, env=env)


def rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def test_device_run_tiny(tmp_path: Path, shim: Path) -> None:
    # Stand-ins for the GPU machine's tools: the memcheck step runs the tiny checks through
    # "compute-sanitizer" (which here just runs its command), and nvidia-smi prints a line.
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "nvidia-smi").write_text("#!/bin/sh\necho 'NVIDIA H200, 570.00, 1980 MHz'\n")
    (fake / "compute-sanitizer").write_text('#!/bin/sh\nwhile [ "${1#--}" != "$1" ]; do shift 2; done\nexec "$@"\n')
    for f in fake.iterdir():
        f.chmod(0o755)
    out = tmp_path / "out"
    proc = gpu_run("--tiny", "--out", str(out), "--shim", str(shim), path_dirs=[fake])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    got = rows(out)
    steps = [r["step"] for r in got if r["step"] != "run"]
    # Written as they come, headline first: a run cut short keeps the most important figures.
    assert list(dict.fromkeys(steps)) == ["preflight", "headline", "correctness", "sweep"]
    assert next(r for r in got if r["case"] == "nvidia-smi")["output"].startswith("NVIDIA H200")
    plan = [r for r in got if r["case"] == "compile plan"]
    assert [r["for_step"] for r in plan] == ["headline", "correctness", "sweep", "memcheck"]
    assert all(r["compilations"] > 0 for r in plan)

    bench = [r for r in got if r["step"] in ("headline", "sweep") and "ms" in r]
    for kind in ("prefill", "decode", "mixed"):
        impls = {r["impl"] for r in bench if r["case"].startswith(kind)}
        assert {"ours", "vllm-triton"} <= impls, (kind, impls)
    assert all(r["relerr"] < 1e-5 for r in bench if "relerr" in r)
    variants = {r["variant"] for r in bench if r["step"] == "sweep"}
    assert len(variants) >= 6 and "default" not in variants  # both lists' non-default variants

    checks = [r for r in got if r["step"] == "correctness"]
    assert len(checks) >= 6 and all(r["ok"] and r["repeatable"] for r in checks if "repeatable" in r)
    assert {r["dtype"] for r in checks} == {"float16", "float32"}
    status = {r["case"]: r["status"] for r in got if r["step"] == "run"}
    assert status == {f"step {s}": "ok" for s in ("headline", "correctness", "sweep", "memcheck")}
    assert all(r["ok"] for r in rows(out / "memcheck"))  # what ran under "compute-sanitizer"
    summary = (out / "summary.md").read_text()
    assert "| prefill B1 S64 causal | vllm-triton |" in summary and "correctness: 6/6 passed" in summary


def test_device_run_refuses_without_vllm_kernel(tmp_path: Path) -> None:
    proc = gpu_run("--tiny", "--out", str(tmp_path), "--shim", str(tmp_path / "no-shim"))
    assert proc.returncode == 2
    assert "Refusing to start" in proc.stderr and "make kernels-gpu-prep" in proc.stderr
    assert {r["step"] for r in rows(tmp_path)} == {"preflight"}


def test_step_time_limits_are_recorded(tmp_path: Path, shim: Path) -> None:
    # A step past its limit is killed and recorded; the next step and the summary still run.
    proc = gpu_run("--tiny", "--out", str(tmp_path), "--shim", str(shim), "--steps", "correctness,memcheck",
                   "--budget-scale", "0")
    assert proc.returncode == 1, proc.stdout[-2000:]
    status = {r["case"]: r["status"] for r in rows(tmp_path) if r["step"] == "run"}
    assert status["step correctness"].startswith("timed out")
    assert "step correctness: timed out" in (tmp_path / "summary.md").read_text()


def test_full_run_fits_its_time_budget() -> None:
    # The full-size plan, built without a GPU: every call's launches, and the kernel compilations
    # each step adds (what decides whether a bare machine finishes in time).
    proc = gpu_run("--dry-run")
    assert proc.returncode == 0, proc.stderr[-3000:]
    plan = [dict(kv.split("=", 1) for kv in line.split(" | ")) for line in proc.stdout.splitlines()]
    assert [p["for_step"] for p in plan] == ["headline", "correctness", "sweep", "memcheck"]
    assert all(p["fits"] == "True" for p in plan), plan
    assert 20 <= int(plan[1]["compilations"]) <= 45, plan  # the cases cover much, not too much


def test_gpu_only_paths_on_fake_rows(tmp_path: Path) -> None:
    # What only full-size GPU rows or a spent budget reach: the goals, and skipping past the budget.
    code = """if True:
        import json, sys
        import bench_attention as B, gpu_check as G
        from common import Deadline, Sink
        rows = [dict(case="copy 1024 MiB (read + write)", impl="torch", ms=1.0, GBps=4000.0)]
        for case, speeds in (("prefill B4 S2048 causal", dict(ours=300, sdpa=494, **{"vllm-triton": 69})),
                             ("prefill B1 S8192 causal", dict(ours=200, sdpa=544, **{"vllm-triton": 73}))):
            rows += [dict(case=case, impl=i, ms=1.0, TFLOPs=t) for i, t in speeds.items()]
        rows += [dict(case="decode B64 ctx4096", impl="ours", ms=1.0, GBps=3700.0, of_copy=0.925),
                 dict(case="decode B8 ctx32768", impl="ours", ms=1.0, GBps=3000.0, of_copy=0.75)]
        lines = B.summary(rows)
        sink = Sink(None, "x")
        G.correctness(sink, False, Deadline(-1), 0)
        B.run_calls(sink, B.headline_calls(False), Deadline(-1), None, None, True)
        print(json.dumps(dict(lines=lines, skipped=[r.get("skipped") for r in sink.rows])))
    """
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=ENV,
                          cwd=BENCH)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    goals = [line for line in res["lines"] if line.startswith("goal ")]
    assert "goal decode B64 ctx4096 >= 90% copy: 0.925 -> MET" in goals
    assert "goal decode B8 ctx32768 >= 80% copy: 0.75 -> MISSED" in goals
    assert "goal prefill B4 S2048 causal >= 3x vLLM: 4.35 -> MET" in goals
    assert "goal prefill B1 S8192 causal >= 0.6x SDPA: 0.368 -> MISSED" in goals
    skipped = res["skipped"]
    assert len(skipped) > 20 and set(skipped) == {"step time budget spent"}


def test_kernels_compile_for_hopper() -> None:
    # The interpreter accepts some code the compiler rejects: compile every kernel for sm_90 too.
    # Also pins the design's key properties: tensor-core MMAs, async copies, no register spills,
    # and the decode occupancy the split count is sized by.
    code = "import json, compile_check; print(json.dumps(compile_check.main([])))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env=ENV,
                          cwd=BENCH)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not [r for r in rows if "error" in r], rows
    by = {r["kernel"]: r for r in rows}
    assert by["prefill | prefill d128 default"]["wgmma"] > 0 and by["prefill | prefill d128 default"]["cp_async"] > 0
    assert by["decode | decode d128 default"]["mma"] > 0 and by["decode | decode d128 default"]["cp_async"] > 0
    assert by["decode | decode d128 default"]["per_sm"] >= 4
    assert all(r["stack"] == 0 for r in rows), rows
