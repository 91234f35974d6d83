"""Cost of one record() call: this plugin's logger next to vLLM's own PrometheusStatLogger.

Both loggers get the same stream of steps (mostly decode steps of a batch of 16, some with a
prefill, some with finishing requests), built from vLLM's real stats classes, with a real
VllmConfig of the tiny test model. Rounds alternate between the two loggers; the median of
the rounds is reported, and the ratio ours / vLLM's (goal: <= 1).

    REF_HARNESS_CACHE=.cache .venv/bin/python plugins/vllm-ref-prometheus/bench/bench_record.py
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time


def steps(batch: int = 16) -> list[tuple]:
    from vllm.v1.engine import FinishReason
    from vllm.v1.metrics.stats import FinishedRequestStats, IterationStats, SchedulerStats

    out = []
    for i in range(100):
        sched = SchedulerStats(num_running_reqs=batch, num_waiting_reqs=i % 3, kv_cache_usage=0.3 + i / 500)
        it = IterationStats()
        it.num_generation_tokens = batch
        it.inter_token_latencies_iter = [0.012] * batch
        if i % 20 == 0:  # a prefill finished in this step
            it.prompt_token_stats.computed = 480
            it.prompt_token_stats.total = 512
            it.time_to_first_tokens_iter = [0.05, 0.06]
        if i % 20 == 10:  # two requests finished
            it.finished_requests = [
                FinishedRequestStats(finish_reason=FinishReason.LENGTH, e2e_latency=1.0, num_prompt_tokens=200,
                                     num_generation_tokens=64, max_tokens_param=64, queued_time=0.01,
                                     prefill_time=0.05, inference_time=0.9, decode_time=0.85),
                FinishedRequestStats(finish_reason=FinishReason.STOP, e2e_latency=0.5, num_prompt_tokens=100,
                                     num_generation_tokens=20, max_tokens_param=64),
            ]
        out.append((sched, it))
    return out


def time_logger(logger, stream: list[tuple], repeat: int) -> float:
    """Seconds per record() call over `repeat` passes of `stream`."""
    start = time.perf_counter()
    for _ in range(repeat):
        for sched, it in stream:
            logger.record(sched, it, None, 0)
    return (time.perf_counter() - start) / (repeat * len(stream))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--repeat", type=int, default=100, help="passes over the 100-step stream per round")
    args = ap.parse_args()
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    from vllm.engine.arg_utils import EngineArgs
    from vllm.v1.metrics.loggers import PrometheusStatLogger
    from vllm_ref_harness import tiny_llama
    from vllm_ref_prometheus.logger import RefPrometheusStatLogger

    config = EngineArgs(model=str(tiny_llama()), max_model_len=512, enforce_eager=True).create_engine_config()
    loggers = {"vllm PrometheusStatLogger": PrometheusStatLogger(config, [0]),
               "vllm-ref-prometheus": RefPrometheusStatLogger(config, [0])}
    stream = steps()
    for lg in loggers.values():  # warm up
        time_logger(lg, stream, 5)
    times: dict[str, list[float]] = {k: [] for k in loggers}
    for _ in range(args.rounds):
        for name, lg in loggers.items():
            times[name].append(time_logger(lg, stream, args.repeat))
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "machine": f"{os.cpu_count()}-core CPU container",
        "us_per_record": {k: round(v * 1e6, 2) for k, v in med.items()},
        "ratio_ours_over_vllm": round(med["vllm-ref-prometheus"] / med["vllm PrometheusStatLogger"], 3),
        "rounds": args.rounds, "calls_per_round": args.repeat * len(stream),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
