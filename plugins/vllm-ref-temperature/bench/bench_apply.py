"""Time apply() on 256 x 128k float32 CPU logits against yardsticks timed beside it; one verdict per row.

Yardsticks, each timed once in every round, alternating with the applies:

- division: one in-place division of the logits by a per-row column, what vLLM's own
  temperature does (`logits.div_(temp.unsqueeze(1))`);
- exp: `torch.exp(logits, out=buffer)` into a preallocated buffer;
- floor: that exp, then the division: the least an exact entropy mode can cost (its entropy
  needs one exp per element, and its temperatures still have to be applied);
- softmax: `torch.softmax(logits, -1)` allocating its output, as vLLM's sampler calls it; for
  scale, no goal.

Goals (ratios of times measured in the same round, median over the rounds):

- all schedule:  apply <= 1.1 x division
- all entropy:   apply <= 1.5 x floor
- mixed 2:1:1 (1/2 schedule, 1/4 entropy, 1/4 untouched rows): apply <= the row-weighted mix
  of those two goals, 3/4 x 1.1 x division + 1/4 x 1.5 x floor. Untouched rows weigh as
  schedule rows: they go through the same single division.

Every variant runs once per round (its time: the fastest of `--repeat` runs back to back), in
an order rotated from round to round, on a fresh copy of the same logits, so a machine whose
speed drifts slows them alike; ratios are taken within each round. `--eager` adds the entropy
rows with the compiled kernel turned off (the fallback path). Usage:

    python bench/bench_apply.py [--batch 256] [--vocab 131072] [--rounds 15] [--repeat 3]
                                [--threads N] [--eager] [--tiny]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from types import SimpleNamespace

import torch
from vllm_ref_temperature import TemperatureLogitsProcessor, kernel

GOAL_SCHEDULE = 1.1  # x one division
GOAL_ENTROPY = 1.5  # x the floor (exp + division)
MIX = {"schedule": 0.5, "entropy": 0.25, "none": 0.25}  # the mixed batch, 2:1:1


def mixed_budget(division: float, floor: float) -> float:
    """What the mixed batch may cost: its rows' goals weighted by their share of the batch."""
    plain = MIX["schedule"] + MIX["none"]
    return plain * GOAL_SCHEDULE * division + MIX["entropy"] * GOAL_ENTROPY * floor


def make_params(kind: str, i: int):
    from vllm import SamplingParams

    if kind == "schedule" or (kind == "mixed" and i % 4 < 2):
        args = {"ref_temp_mode": "schedule", "ref_temp_start": 2.0, "ref_temp_end": 0.5, "ref_temp_steps": 64}
    elif kind == "entropy" or (kind == "mixed" and i % 4 == 2):
        args = {"ref_temp_mode": "entropy", "ref_temp_min": 0.3, "ref_temp_max": 1.5}
    else:
        args = None
    return SamplingParams(temperature=1.0, extra_args=args)


def v1_processor(kind: str, batch: int) -> TemperatureLogitsProcessor:
    """A processor under vLLM's V1 interface (the CPU build's runner) holding `batch` requests."""
    from vllm.v1.sample.logits_processor import BatchUpdate

    config = SimpleNamespace(scheduler_config=SimpleNamespace(max_num_seqs=batch))
    proc = TemperatureLogitsProcessor(config, torch.device("cpu"), False)
    outputs = [[0] * (i % 80) for i in range(batch)]
    added = [(i, make_params(kind, i), [1], outputs[i]) for i in range(batch)]
    proc.update_state(BatchUpdate(batch, [], added, []))
    return proc


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def with_eager(fn: Callable[[], object]) -> Callable[[], object]:
    def run() -> object:
        previous = kernel.use_compiled_entropy(False)
        try:
            return fn()
        finally:
            kernel.use_compiled_entropy(previous)
    return run


def time_rounds(fns: dict[str, Callable[[], object]], reset: Callable[[], None], rounds: int,
                warmup: int, repeat: int) -> dict[str, list[float]]:
    """Seconds per variant per round; the order of the variants rotates every round.

    Each variant's time in a round is the fastest of `repeat` back-to-back runs: on a shared
    machine the noise only ever adds time (another process takes the core, or one of torch's
    threads waits for the other), so the minimum is the least disturbed run.
    """
    names = list(fns)
    times: dict[str, list[float]] = {k: [] for k in names}
    for r in range(warmup + rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            best = math.inf
            for _ in range(repeat):
                reset()
                t0 = time.perf_counter()
                fns[name]()
                best = min(best, time.perf_counter() - t0)
            if r >= warmup:
                times[name].append(best)
    return times


def quartiles(xs: list[float]) -> tuple[float, float, float]:
    if len(xs) < 2:
        return xs[0], xs[0], xs[0]
    q1, q2, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    return q1, q2, q3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--vocab", type=int, default=131072)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3, help="runs per variant per round; the fastest counts")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--eager", action="store_true", help="also time entropy rows on the eager fallback path")
    ap.add_argument("--tiny", action="store_true", help="8 x 4096, 3 rounds: checks the script runs, no figures")
    args = ap.parse_args()
    if args.tiny:
        args.batch, args.vocab, args.rounds, args.warmup, args.repeat = 8, 4096, 3, 1, 1
    if args.batch % 4:
        ap.error("--batch must be a multiple of 4 (the mixed batch is 2:1:1)")
    if args.threads:
        torch.set_num_threads(args.threads)

    print(f"machine: {cpu_model()} ({platform.machine()}), {os.cpu_count()} CPUs, torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads; load average {load()} at start")
    print(f"logits {args.batch} x {args.vocab} float32; medians of {args.rounds} rounds after "
          f"{args.warmup} warm-up rounds; each variant once per round (fastest of {args.repeat} runs), "
          "order rotating")

    gen = torch.Generator().manual_seed(0)
    source = torch.randn(args.batch, args.vocab, generator=gen) * 4
    work = torch.empty_like(source)
    scratch = torch.empty_like(source)
    temps = torch.full((args.batch,), 0.7)
    procs = {kind: v1_processor(kind, args.batch) for kind in ("schedule", "mixed", "entropy")}

    def reset() -> None:
        work.copy_(source)  # the same input every time, and a comparable cache state

    def floor() -> None:
        torch.exp(work, out=scratch)
        work.div_(temps.unsqueeze(1))

    # A processor that is off (version gate, no vLLM) returns the logits untouched: no figures then.
    for kind, proc in procs.items():
        reset()
        if torch.equal(proc.apply(work), source):
            raise SystemExit(f"the {kind} processor left the logits untouched: is the plugin enabled?")
    compiles = list(kernel._COMPILED.compile_seconds)
    if compiles:
        print(f"first apply with entropy rows compiled the kernel: {compiles[0]:.1f} s "
              "(inductor's on-disk cache may have been warm)")
    elif kernel._COMPILED.enabled:
        print("the entropy kernel was already compiled in this process")
    else:
        print("the compiled entropy is off in this process: entropy rows use the eager path")

    fns: dict[str, Callable[[], object]] = {
        "division": lambda: work.div_(temps.unsqueeze(1)),
        "exp": lambda: torch.exp(work, out=scratch),
        "floor": floor,
        "softmax": lambda: torch.softmax(work, dim=-1),
    }
    for kind, proc in procs.items():
        fns[kind] = lambda proc=proc: proc.apply(work)
    if args.eager:
        for kind in ("mixed", "entropy"):
            fns[f"{kind} eager"] = with_eager(lambda proc=procs[kind]: proc.apply(work))
            reset()
            fns[f"{kind} eager"]()  # its scratch buffers are allocated outside the rounds
    times = time_rounds(fns, reset, args.rounds, args.warmup, args.repeat)
    ms = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    n = args.rounds

    print(f"yardsticks (median ms): division {ms['division']:.3g}, exp {ms['exp']:.3g}, "
          f"floor (exp + division) {ms['floor']:.3g}, softmax (allocating) {ms['softmax']:.3g}; "
          f"softmax / floor {statistics.median(times['softmax'][i] / times['floor'][i] for i in range(n)):.2f}, "
          f"exp / division {statistics.median(times['exp'][i] / times['division'][i] for i in range(n)):.2f}")
    print(f"{'row':<22}{'apply ms':>9}{'/division':>10}{'/floor':>8}  {'against':<34}"
          f"{'ratio (q1-q3)':<20}{'goal':<8}verdict")
    rows = [("all schedule", "schedule"), ("mixed 2:1:1", "mixed"), ("all entropy", "entropy")]
    if args.eager:
        rows += [("mixed 2:1:1, eager", "mixed eager"), ("all entropy, eager", "entropy eager")]
    for label, name in rows:
        t, div, flo = times[name], times["division"], times["floor"]
        if name == "schedule":
            against, goal = "division", GOAL_SCHEDULE
            ratios = [t[i] / div[i] for i in range(n)]
        elif name.startswith("entropy"):
            against, goal = "floor", GOAL_ENTROPY
            ratios = [t[i] / flo[i] for i in range(n)]
        else:
            against, goal = "mix 3/4*1.1*div + 1/4*1.5*floor", 1.0
            ratios = [t[i] / mixed_budget(div[i], flo[i]) for i in range(n)]
        q1, med, q3 = quartiles(ratios)
        by_div = statistics.median(t[i] / div[i] for i in range(n))
        by_floor = statistics.median(t[i] / flo[i] for i in range(n))
        verdict = "met" if med <= goal else f"missed by {(med / goal - 1) * 100:.0f}%"
        print(f"{label:<22}{ms[name]:>9.3g}{by_div:>10.2f}{by_floor:>8.2f}  {against:<34}"
              f"{f'{med:.2f} ({q1:.2f}-{q3:.2f})':<20}{f'<= {goal:.2f}':<8}{verdict}")
    compiled_during = len(kernel._COMPILED.compile_seconds) - len(compiles)
    print(f"entropy kernel compiles during the rounds: {compiled_during} "
          f"({args.batch} and {args.batch // 4} entropy rows per call); load average {load()} at end")
    if args.tiny:
        print("tiny mode: the script runs; at this size the figures are call overhead and say nothing")


if __name__ == "__main__":
    main()
