"""Time apply() at batch 256 x vocabulary 128k, float32, on the CPU, against two yardsticks.

- one in-place division of the whole logits tensor by a per-row column (what vLLM's own
  temperature does: `logits.div_(temp.unsqueeze(1))`); the goal is apply <= 1.5x of it;
- a per-row Python loop computing the same result (per-request state in a dict, a float per
  row, `.item()` for the entropy); the goal is apply >= 10x faster than it;
- and, for the entropy rows, one `torch.exp` over the whole tensor: every exact entropy needs an
  exp per element, so this is the floor for that mode.

All variants run interleaved in the same process, repetition by repetition, and the report
gives medians and ratios, so a busy machine slows them alike. Usage:

    python bench/bench_apply.py [--batch 256] [--vocab 131072] [--reps 15] [--threads N]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time
from types import SimpleNamespace

import torch
from vllm_ref_temperature import TemperatureLogitsProcessor, kernel
from vllm_ref_temperature.params import SCHEDULE, parse


def make_params(kind: str, i: int):
    from vllm import SamplingParams

    if kind == "schedule" or (kind == "mixed" and i % 4 < 2):
        args = {"ref_temp_mode": "schedule", "ref_temp_start": 2.0, "ref_temp_end": 0.5, "ref_temp_steps": 64}
    elif kind == "entropy" or (kind == "mixed" and i % 4 == 2):
        args = {"ref_temp_mode": "entropy", "ref_temp_min": 0.3, "ref_temp_max": 1.5}
    else:
        args = None
    return SamplingParams(temperature=1.0, extra_args=args)


def v1_processor(kind: str, batch: int):
    from vllm.v1.sample.logits_processor import BatchUpdate

    config = SimpleNamespace(scheduler_config=SimpleNamespace(max_num_seqs=batch))
    proc = TemperatureLogitsProcessor(config, torch.device("cpu"), False)
    outputs = [[0] * (i % 80) for i in range(batch)]
    params = [make_params(kind, i) for i in range(batch)]
    proc.update_state(BatchUpdate(batch, [], [(i, params[i], [1], outputs[i]) for i in range(batch)], []))
    return proc, params, outputs


class RowLoop:
    """The same result, one row at a time in Python: how a naive processor does it."""

    def __init__(self, params, outputs):
        self.specs = {i: parse(p.extra_args) for i, p in enumerate(params)}
        self.outputs = outputs

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        for i in range(logits.shape[0]):
            spec = self.specs.get(i)
            if spec is None:
                continue
            if spec.mode == SCHEDULE:
                steps, g = spec.c, len(self.outputs[i])
                frac = min(g, steps) / steps if steps > 0 else 1.0
                t = max(spec.a * (1 - frac) + spec.b * frac, kernel.FLOOR)
            else:
                p = torch.softmax(logits[i], dim=-1)
                h = torch.special.entr(p).sum().item() / math.log(logits.shape[1])
                t = max(spec.a + (spec.b - spec.a) * h, kernel.FLOOR)
            logits[i].div_(t)
        return logits


def bench(batch: int, vocab: int, reps: int) -> list[tuple[str, float, float, float, float]]:
    gen = torch.Generator().manual_seed(0)
    source = torch.randn(batch, vocab, generator=gen) * 4
    work = torch.empty_like(source)
    scratch = torch.empty_like(source)
    temps = torch.full((batch,), 0.7)
    rows = []
    for kind in ("schedule", "mixed", "entropy"):
        proc, params, outputs = v1_processor(kind, batch)
        loop = RowLoop(params, outputs)
        fns = {
            "division": lambda: work.div_(temps.unsqueeze(1)),
            "exp": lambda: torch.exp(work, out=scratch),
            "apply": lambda proc=proc: proc.apply(work),
            "loop": lambda loop=loop: loop.apply(work),
        }
        times: dict[str, list[float]] = {k: [] for k in fns}
        for r in range(reps + 2):
            for name, fn in fns.items():
                work.copy_(source)  # same input every time, and the same cache state
                t0 = time.perf_counter()
                fn()
                dt = time.perf_counter() - t0
                if r >= 2:  # first two rounds warm up allocator and caches
                    times[name].append(dt)
        med = {k: statistics.median(v) for k, v in times.items()}
        rows.append((kind, med["division"] * 1e3, med["apply"] * 1e3, med["loop"] * 1e3, med["exp"] * 1e3))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--vocab", type=int, default=131072)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"machine: {platform.machine()} {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; logits {args.batch} x {args.vocab} float32; "
          f"median of {args.reps}")
    print(f"{'rows opted in':<16}{'division ms':>12}{'apply ms':>10}{'loop ms':>10}"
          f"{'apply/division':>16}{'loop/apply':>12}")
    exps = []
    for kind, div, app, loop, exp in bench(args.batch, args.vocab, args.reps):
        label = {"schedule": "all schedule", "mixed": "mixed 2:1:1", "entropy": "all entropy"}[kind]
        print(f"{label:<16}{div:>12.2f}{app:>10.2f}{loop:>10.2f}{app / div:>16.2f}{loop / app:>12.2f}")
        exps.append(exp / div)
    # Any exact entropy evaluates exp once per element: this is its floor on this machine.
    print(f"one torch.exp over the whole tensor: {statistics.median(exps):.2f}x one division")


if __name__ == "__main__":
    main()
