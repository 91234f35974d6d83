"""End-to-end generation throughput of AsyncLLM with vs without this plugin's stat logger.

One AsyncLLM of the tiny test model; timed rounds alternate between "with" (the plugin's
logger is in the engine's StatLoggerManager, next to vLLM's own loggers, exactly where the
entry point puts it) and "without" (vLLM's loggers only). Same engine, same process, rounds
interleaved: background load hits both alike. (Two engines side by side were tried first: their
idle worker threads skewed whichever ran second, by far more than the effect measured.) A tiny model
makes each engine step short, so the front end's per-step logging weighs as much as it ever
can: a worst case for the plugin. Reports tokens/s (median of rounds) and the ratio with/without
(goal: >= 0.98), and the share of wall time spent inside the plugin's record().

    REF_HARNESS_CACHE=.cache .venv/bin/python plugins/vllm-ref-prometheus/bench/bench_throughput.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time


async def round_tokens_per_s(engine, requests: int, max_tokens: int, tag: str) -> float:
    from vllm import SamplingParams

    params = SamplingParams(max_tokens=max_tokens, temperature=0.0, ignore_eos=True)

    async def one(i: int) -> int:
        n = 0
        async for out in engine.generate(f"Benchmark prompt number {i} about metrics", params,
                                         request_id=f"{tag}-{i}"):
            n = len(out.outputs[0].token_ids)
        return n

    start = time.perf_counter()
    tokens = sum(await asyncio.gather(*(one(i) for i in range(requests))))
    return tokens / (time.perf_counter() - start)


class _Timed:
    """Delegates to the plugin's logger and adds up the wall time spent in its record()."""

    def __init__(self, inner):
        self.inner, self.seconds, self.calls = inner, 0.0, 0

    def record(self, *args, **kwargs):
        t = time.perf_counter()
        self.inner.record(*args, **kwargs)
        self.seconds += time.perf_counter() - t
        self.calls += 1

    def __getattr__(self, name):
        return getattr(self.inner, name)


async def main_async(args: argparse.Namespace) -> dict:
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.v1.engine.async_llm import AsyncLLM
    from vllm_ref_harness import tiny_llama
    from vllm_ref_prometheus.logger import RefPrometheusStatLogger

    engine_args = AsyncEngineArgs(model=str(tiny_llama()), max_model_len=512, enforce_eager=True, seed=0,
                                  max_num_seqs=args.requests)
    engine = AsyncLLM.from_engine_args(engine_args)
    manager = engine.logger_manager
    ours = _Timed(RefPrometheusStatLogger(engine.vllm_config, manager.engine_indexes))
    try:
        await round_tokens_per_s(engine, 4, 8, "warm")
        rates: dict[str, list[float]] = {"with": [], "without": []}
        for r in range(args.rounds):
            for name in (("with", "without") if r % 2 == 0 else ("without", "with")):
                if name == "with":
                    manager.stat_loggers.append(ours)
                rates[name].append(await round_tokens_per_s(engine, args.requests, args.max_tokens,
                                                            f"{name}-{r}"))
                if name == "with":
                    manager.stat_loggers.remove(ours)
    finally:
        engine.shutdown()
    med = {k: statistics.median(v) for k, v in rates.items()}
    pairs = [w / wo for w, wo in zip(rates["with"], rates["without"], strict=True)]
    with_wall = sum(args.requests * args.max_tokens / r for r in rates["with"])
    return {
        "machine": f"{os.cpu_count()}-core CPU container",
        "tokens_per_s_median": {k: round(v, 1) for k, v in med.items()},
        "ratio_of_medians": round(med["with"] / med["without"], 3),
        "median_of_paired_ratios": round(statistics.median(pairs), 3),
        "paired_ratios": [round(x, 3) for x in pairs],
        # Noise-free view: the share of the "with" rounds' wall time spent inside the plugin's
        # record(); throughput can lose at most that share.
        "record_calls": ours.calls,
        "record_us_per_call": round(1e6 * ours.seconds / max(ours.calls, 1), 2),
        "record_share_of_wall_time": round(ours.seconds / with_wall, 5),
        "rounds": args.rounds, "requests_per_round": args.requests, "max_tokens": args.max_tokens,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=16)
    ap.add_argument("--requests", type=int, default=32)
    ap.add_argument("--max-tokens", type=int, default=128)
    args = ap.parse_args()
    # Only the logger under test: no entry-point plugins at all, one small KV cache per engine.
    os.environ["VLLM_PLUGINS"] = ""
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    print(json.dumps(asyncio.run(main_async(args)), indent=2))


if __name__ == "__main__":
    main()
