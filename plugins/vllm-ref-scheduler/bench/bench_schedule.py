"""Cost of Scheduler.schedule() with and without the fair-share patch, side by side.

A real vLLM v1 Scheduler (no engine: model outputs are faked, one token per scheduled request)
keeps --waiting requests queued from --tenants tenants while --running sequences decode. Each
round builds one unpatched and one patched scheduler and times the same number of schedule()
calls on each, alternating call by call so that both see the same machine state (the patch's
own work runs inside schedule(): admission picks and charging). Time is the thread's CPU time
(time.thread_time), so other processes competing for the cores do not count. Prints the mean
per-call time of each, the ratio of their totals (overall and per round) and the median ratio
of paired calls.

    REF_HARNESS_CACHE=.cache .venv/bin/python plugins/vllm-ref-scheduler/bench/bench_schedule.py
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import random
import statistics
import time
from pathlib import Path

# Patches are applied by hand below, not by vLLM loading the plugin through EngineArgs.
os.environ["VLLM_PLUGINS"] = ""

from vllm.v1.core.sched.scheduler import Scheduler  # noqa: E402
from vllm.v1.outputs import ModelRunnerOutput  # noqa: E402
from vllm_ref_common import patching  # noqa: E402
from vllm_ref_harness import tiny_llama  # noqa: E402
from vllm_ref_scheduler.fair_share import FairShareQueue, FairShareScheduler  # noqa: E402
from vllm_ref_scheduler.testing import make_request, make_scheduler  # noqa: E402


def run(model: Path, args: argparse.Namespace) -> tuple[list[float], list[float]]:
    """Per-call CPU seconds of schedule() for an unpatched and a patched scheduler fed the same
    workload, measured call by call in alternating order.

    The patch stays applied for the whole run, as in an engine: applying and removing it around
    each call would change the Scheduler class every call, and Python then throws away the
    attribute caches of every method that touches it (a third of the time measured). The
    unpatched side is an instance of a subclass that puts vLLM's own methods back."""
    originals = {name: vars(Scheduler)[name] for name in FairShareScheduler.methods()}
    Plain = type("Plain", (Scheduler,), dict(originals))
    if not args.aa:
        patching.apply(FairShareScheduler)
    try:
        schedulers = {False: make_scheduler(model, max_num_seqs=args.running, num_blocks=16384, cls=Plain),
                      True: make_scheduler(model, max_num_seqs=args.running, num_blocks=16384)}
        # Each side draws the same sequence of tenants, and its k-th admitted request gets the
        # k-th output length: the two sides admit different requests, but the same number in
        # each step, so call i of one side does the same amount of work as call i of the other.
        tenants = {side: itertools.cycle(f"t{i}" for i in range(args.tenants)) for side in (False, True)}
        rngs = {side: random.Random(0) for side in (False, True)}
        longest = 2 * args.max_tokens - 1 if args.spread else args.max_tokens
        times: dict[bool, list[float]] = {False: [], True: []}
        admitted: dict[bool, list[int]] = {False: [], True: []}
        for i in range(args.warmup + args.steps):
            if i % 50 == 0:
                gc.collect()  # outside the timed calls, and both sides alike
            for patched in ((False, True) if i % 2 == 0 else (True, False)):
                s = schedulers[patched]
                while len(s.waiting) < args.waiting:
                    s.add_request(make_request(next(tenants[patched]), prompt_len=16, max_tokens=longest,
                                               hashed=True))
                t0 = time.thread_time()
                out = s.schedule()
                dt = time.thread_time() - t0
                if i >= args.warmup:
                    times[patched].append(dt)
                admitted[patched].append(len(out.scheduled_new_reqs))
                for new in out.scheduled_new_reqs:
                    n = rngs[patched].randint(1, longest) if args.spread else longest
                    s.requests[new.req_id].max_tokens = n
                ids = list(out.num_scheduled_tokens)
                s.update_from_output(out, ModelRunnerOutput(
                    req_ids=ids, req_id_to_index={r: j for j, r in enumerate(ids)},
                    sampled_token_ids=[[7] for _ in ids]))
    finally:
        patching.remove(FairShareScheduler)
    assert args.aa or isinstance(schedulers[True].waiting, FairShareQueue), "patched side is not patched"
    assert not isinstance(schedulers[False].waiting, FairShareQueue), "unpatched side is patched"
    assert admitted[False] == admitted[True], "the two sides' workloads differ"
    return times[False], times[True]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--waiting", type=int, default=500, help="requests kept waiting (default 500)")
    p.add_argument("--running", type=int, default=64, help="max_num_seqs (default 64)")
    p.add_argument("--tenants", type=int, default=8)
    p.add_argument("--max-tokens", type=int, default=16, help="output tokens per request (default 16)")
    p.add_argument("--spread", action="store_true",
                   help="output lengths uniform in 1..2*max_tokens-1 (same mean): requests finish and are "
                        "admitted a few at a time, instead of all together every max_tokens steps")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--aa", action="store_true", help="control run: the 'patched' side is unpatched too")
    args = p.parse_args()
    model = tiny_llama()
    gc.disable()  # collections would land at random in one or the other
    base_all: list[float] = []
    fair_all: list[float] = []
    ratios = []
    for _ in range(args.rounds):
        base, fair = run(model, args)
        base_all += base
        fair_all += fair
        ratios.append(sum(fair) / sum(base))
        gc.collect()
    # Both schedulers run the same step of the same workload shape, so call i of one pairs with
    # call i of the other; the median of those ratios ignores the odd call that an interrupt or
    # a page fault lands on, but also the admission steps, where the patch does most of its
    # work: the ratio of totals is the figure that counts.
    paired = statistics.median(f / b for f, b in zip(fair_all, base_all, strict=True) if b > 0)
    lengths = f"1-{2 * args.max_tokens - 1}" if args.spread else f"{args.max_tokens}"
    print(f"schedule() with {args.waiting} waiting, {args.running} running, {args.tenants} tenants, "
          f"{lengths} output tokens, "
          f"{args.rounds} rounds x {args.steps} calls each, alternating call by call")
    print(f"  vLLM scheduler   : {statistics.mean(base_all) * 1e6:8.1f} us/call CPU time")
    print(f"  + fair_share     : {statistics.mean(fair_all) * 1e6:8.1f} us/call")
    print(f"  ratio of totals  : {sum(fair_all) / sum(base_all):8.3f}  (goal <= 1.05)")
    print(f"  median per call  : {paired:8.3f}  (ratio of paired calls)")
    print(f"  per-round ratios : {' '.join(f'{r:.3f}' for r in ratios)}")

if __name__ == "__main__":
    main()
