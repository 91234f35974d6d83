"""The device run: every GPU figure of this package in one call, written row by row as it goes.

  python3 kernels/bench/gpu_run.py --out $OUT      # on the GPU; exact call in kernels/BENCHMARKS.md
  python kernels/bench/gpu_run.py --tiny --out D   # the same run on the CPU (Triton's interpreter)
  python kernels/bench/gpu_run.py --dry-run        # the plan: compilations per step against budgets

Steps, in this order, each in its own process (a GPU fault in one cannot take the others down)
under its own time limit, appending to OUT/results.jsonl as each row is done:

  preflight    versions, nvidia-smi; refuses to start without vLLM's kernel (the shim in
               .anchors/, built by `make kernels-gpu-prep`); counts the kernel compilations.
  headline     copy and matmul ceilings, then the anchor shapes: ours, SDPA, vLLM's kernel.
  correctness  every case against the fp64 reference in fp16 and bf16 (bench/gpu_check.py).
  sweep        the other launch variants on the anchor shapes (bench/bench_attention.py).
  memcheck     compute-sanitizer over the tiny correctness cases, where the tool exists.
  summary      OUT/summary.md and the last lines printed: ratios, goals MET/MISSED.

A rerun of only what failed: --steps sweep (rows are appended to the same results.jsonl).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

import bench_attention  # noqa: E402
import gpu_check  # noqa: E402
from common import DEV, Deadline, Sink, compile_keys, fmt, load_vllm_kernel, read_rows  # noqa: E402

# Seconds per step on the GPU, at most. Together 390 s: a 540 s device call keeps 2.5 minutes for
# imports, preflight and summary; the expected total (compilations + about 1 minute of timing) is
# near half of it, which leaves a rerun of a failed step inside a 15-minute device allowance.
BUDGETS = {"headline": 90, "correctness": 150, "sweep": 90, "memcheck": 60}
# Assumed seconds per distinct kernel compilation on a bare machine: ptxas for sm_90 took 0.3-2 s
# per kernel on the 2-core CPU machine (compile_check.py), plus the launcher's C build per signature.
COMPILE_S = 2.0
# vLLM's kernel is compiled too: its 2D kernel (prefill, mixed) and its 3D kernel + reduction (decode).
VLLM_COMPILES = 3


def compile_plan(tiny: bool) -> list[dict]:
    """New kernel compilations per step (binaries an earlier step made are cached on disk)."""
    seen: set = set()
    plan = []
    steps = [("headline", bench_attention.headline_calls(tiny), VLLM_COMPILES),
             ("correctness", gpu_check.correctness_calls(tiny), 2),  # + the cache write, fp16 and bf16
             ("sweep", bench_attention.sweep_calls(tiny), 0),
             ("memcheck", gpu_check.correctness_calls(True), 1)]  # tiny shapes, compiled anew
    for step, calls, extra in steps:
        keys = compile_keys(calls)
        new = len(keys - seen) + extra
        seen |= keys
        plan.append(dict(for_step=step, calls=len(calls), compilations=new, est_compile_s=new * COMPILE_S,
                         budget_s=BUDGETS[step], fits=new * COMPILE_S <= BUDGETS[step] / 2))
    return plan


def run_step(step: str, out: Path, tiny: bool, seed: int, budget: float) -> int:
    sink = Sink(out, step)
    deadline = Deadline(budget * 0.85)  # stop starting cases early enough to leave before the kill
    if step == "headline":
        vkernel = load_vllm_kernel()
        if vkernel is None:
            return 2
        bench_attention.headline(sink, tiny, deadline, vkernel)
    elif step == "correctness":
        gpu_check.correctness(sink, tiny, deadline, seed)
    elif step == "sweep":
        copy = next((r["GBps"] for r in read_rows(out) if r["case"].startswith("copy")), None)
        bench_attention.sweep(sink, tiny, deadline, copy)
    return 0


def preflight(sink: Sink, shim: Path, tiny: bool) -> bool:
    import torch
    import triton

    sink.add(case="env", device=torch.cuda.get_device_name() if DEV == "cuda" else "cpu (TRITON_INTERPRET=1)",
             torch=torch.__version__, triton=triton.__version__, python=sys.version.split()[0], tiny=tiny)
    if shutil.which("nvidia-smi"):
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,"
                              "temperature.gpu,power.draw", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
        sink.add(case="nvidia-smi", output=(smi.stdout or smi.stderr).strip())
    sys.path.insert(0, str(shim))
    version = shim.parent / "vllm_version.txt"
    if load_vllm_kernel() is None:
        print(f"\nRefusing to start: vLLM's kernel is not importable from {shim}, so the vLLM column would "
              f"be missing.\nBuild it on the CPU machine with `make kernels-gpu-prep` and carry .anchors.",
              file=sys.stderr)
        return False
    sink.add(case="vllm shim", path=str(shim),
             vllm=version.read_text().strip() if version.exists() else "unknown")
    for row in compile_plan(tiny):
        sink.add(case="compile plan", **row)
    return True


def summarize(out: Path) -> tuple[list[str], bool]:
    rows = read_rows(out)
    lines = bench_attention.summary(rows)
    checks = [r for r in rows if r["step"] == "correctness"]
    failed = [r for r in checks if not r.get("ok")]
    lines.append(f"correctness: {len(checks) - len(failed)}/{len(checks)} passed"
                 + "".join(f"\nFAILED {fmt(r)}" for r in failed))
    steps = [r for r in rows if r["case"].startswith("step ")]
    lines += [f"{r['case']}: {r['status']} in {r['seconds']:.0f}s" for r in steps]
    ok = bool(checks) and not failed and all(r["status"] == "ok" or r["status"].startswith("skipped") for r in steps)
    table = ["| case | impl | variant | ms | TFLOP/s | GB/s | % copy | relerr |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["step"] in ("headline", "sweep") and "ms" in r:
            table.append("| " + " | ".join([r["case"], r["impl"], r.get("variant", ""), f"{r['ms']:.4g}",
                                            f"{r['TFLOPs']:.1f}" if "TFLOPs" in r else "",
                                            f"{r['GBps']:.0f}" if "GBps" in r else "",
                                            f"{100 * r['of_copy']:.0f}" if "of_copy" in r else "",
                                            f"{r['relerr']:.2g}" if "relerr" in r else ""]) + " |")
    (out / "summary.md").write_text("\n".join(table + [""] + lines) + "\n")
    return lines, ok


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tiny", action="store_true", help="small shapes (the CPU interpreter's check of the run)")
    p.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "/tmp/vllm-ref-kernels")))
    p.add_argument("--steps", default=",".join(BUDGETS), help=f"comma-separated, of {', '.join(BUDGETS)}")
    p.add_argument("--shim", type=Path, default=REPO / ".anchors" / "shim", help="folder holding the vllm shim")
    p.add_argument("--budget-scale", type=float, default=1.0, help="multiply every step's time limit")
    p.add_argument("--seed", type=int, default=int(os.environ.get("REF_KERNELS_SEED", random.randrange(1 << 31))))
    p.add_argument("--dry-run", action="store_true", help="print the compile plan and exit")
    p.add_argument("--step", help=argparse.SUPPRESS)  # internal: run one step in this process
    args = p.parse_args(argv)
    if args.dry_run:
        for row in compile_plan(args.tiny):
            print(fmt(row))
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    if args.step:
        return run_step(args.step, args.out, args.tiny, args.seed, BUDGETS[args.step] * args.budget_scale)

    steps = [s for s in args.steps.split(",") if s]
    unknown = set(steps) - set(BUDGETS)
    if unknown:
        p.error(f"unknown steps {sorted(unknown)}; choose from {', '.join(BUDGETS)}")
    if set(steps) == set(BUDGETS):  # a whole run starts a fresh record; a rerun of some steps appends
        (args.out / "results.jsonl").unlink(missing_ok=True)
    if not preflight(Sink(args.out, "preflight"), args.shim, args.tiny):
        return 2
    sink = Sink(args.out, "run")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(args.shim), str(REPO / "kernels" / "src")] + [x for x in [os.environ.get("PYTHONPATH")] if x]))
    base = [sys.executable, str(Path(__file__).resolve())]
    for step in steps:
        cmd = base + ["--step", step, "--out", str(args.out), "--seed", str(args.seed)] + (["--tiny"] * args.tiny)
        if step == "memcheck":
            if not shutil.which("compute-sanitizer"):
                sink.add(case=f"step {step}", status="skipped: no compute-sanitizer", seconds=0.0)
                continue
            cmd = ["compute-sanitizer", "--tool", "memcheck", "--error-exitcode", "9"] + base + [
                "--step", "correctness", "--tiny", "--out", str(args.out / "memcheck"), "--seed", str(args.seed)]
        t0 = time.monotonic()
        try:
            rc = subprocess.run(cmd, env=env, timeout=BUDGETS[step] * args.budget_scale).returncode
            status = "ok" if rc == 0 else f"exit {rc}" + (" (memcheck found errors)" if rc == 9 else "")
        except subprocess.TimeoutExpired:
            status = f"timed out after {BUDGETS[step] * args.budget_scale:.0f}s"
        sink.add(case=f"step {step}", status=status, seconds=time.monotonic() - t0)
    lines, ok = summarize(args.out)
    print("\n== summary (times are medians; ratios > 1x mean ours is faster)\n" + "\n".join(lines), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
