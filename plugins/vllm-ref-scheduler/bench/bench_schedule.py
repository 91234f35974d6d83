"""Cost of Scheduler.schedule() with and without the fair-share patch, side by side.

A real vLLM v1 Scheduler (no engine: model outputs are faked, one token per scheduled request)
keeps --waiting requests queued from --tenants tenants while --running sequences decode. Each
round builds one unpatched and one patched scheduler and times the same number of schedule()
calls on each (the patch's own work runs inside schedule(): admission picks and charging);
rounds alternate the order. Time is the thread's CPU time (time.thread_time), so other
processes competing for the cores do not count. Prints the median per-call time of each and
the median of the per-round ratios.

    VLLM_REF_CACHE=.cache .venv/bin/python plugins/vllm-ref-scheduler/bench/bench_schedule.py
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import statistics
import sys
import time
from pathlib import Path

# Patches are applied by hand below, not by vLLM loading the plugin through EngineArgs.
os.environ["VLLM_PLUGINS"] = ""
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from sched_helpers import make_request, make_scheduler  # noqa: E402
from vllm.v1.outputs import ModelRunnerOutput  # noqa: E402
from vllm_ref_harness import tiny_llama  # noqa: E402
from vllm_ref_scheduler import patching  # noqa: E402
from vllm_ref_scheduler.fair_share import FairShareScheduler  # noqa: E402


def one_round(model: Path, patched: bool, args: argparse.Namespace) -> float:
    """Mean seconds per schedule() call over args.steps steady-state steps."""
    if patched:
        patching.apply(FairShareScheduler)
    try:
        s = make_scheduler(model, max_num_seqs=args.running, num_blocks=16384)
        tenants = itertools.cycle(f"t{i}" for i in range(args.tenants))

        def top_up() -> None:
            while len(s.waiting) < args.waiting:
                s.add_request(make_request(next(tenants), prompt_len=16, max_tokens=args.max_tokens))

        total, calls = 0.0, 0
        for i in range(args.warmup + args.steps):
            top_up()
            t0 = time.thread_time()
            out = s.schedule()
            dt = time.thread_time() - t0
            if i >= args.warmup:
                total, calls = total + dt, calls + 1
            ids = list(out.num_scheduled_tokens)
            s.update_from_output(out, ModelRunnerOutput(
                req_ids=ids, req_id_to_index={r: j for j, r in enumerate(ids)},
                sampled_token_ids=[[7] for _ in ids]))
        return total / calls
    finally:
        patching.remove(FairShareScheduler)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--waiting", type=int, default=500, help="requests kept waiting (default 500)")
    p.add_argument("--running", type=int, default=64, help="max_num_seqs (default 64)")
    p.add_argument("--tenants", type=int, default=8)
    p.add_argument("--max-tokens", type=int, default=16)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--rounds", type=int, default=6)
    args = p.parse_args()
    model = tiny_llama()
    times: dict[bool, list[float]] = {False: [], True: []}
    gc.disable()  # collections land at random in one or the other
    for r in range(args.rounds):
        for patched in ((False, True) if r % 2 == 0 else (True, False)):
            times[patched].append(one_round(model, patched, args))
            gc.collect()
    base, fair = statistics.median(times[False]), statistics.median(times[True])
    ratio = statistics.median(f / b for f, b in zip(times[True], times[False], strict=True))
    print(f"schedule() with {args.waiting} waiting, {args.running} running, {args.tenants} tenants, "
          f"{args.rounds} rounds x {args.steps} calls")
    print(f"  vLLM scheduler   : {base * 1e6:8.1f} us/call CPU time (median of rounds)")
    print(f"  + fair_share     : {fair * 1e6:8.1f} us/call")
    print(f"  ratio            : {ratio:8.3f}  (median of per-round ratios; goal <= 1.05)")
    print(f"  per-round ratios : {' '.join(f'{f / b:.3f}' for f, b in zip(times[True], times[False], strict=True))}")


if __name__ == "__main__":
    main()
