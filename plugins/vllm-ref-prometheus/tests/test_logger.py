"""The stat logger against vLLM's real stats classes, with a fake VllmConfig (no engine)."""

from types import SimpleNamespace

import pytest
from prometheus_client import REGISTRY

pytest.importorskip("vllm")

from vllm.v1.engine import FinishReason  # noqa: E402
from vllm.v1.metrics.loggers import AggregateStatLoggerBase, StatLoggerBase  # noqa: E402
from vllm.v1.metrics.prometheus import unregister_vllm_metrics  # noqa: E402
from vllm.v1.metrics.stats import (  # noqa: E402
    FinishedRequestStats,
    IterationStats,
    SchedulerIterationDetails,
    SchedulerStats,
)
from vllm_ref_prometheus import FINISH_REASONS, METRICS, PREFIX, exported_names  # noqa: E402
from vllm_ref_prometheus.logger import RefPrometheusStatLogger  # noqa: E402


def fake_config(model: str, max_model_len: int = 512):
    return SimpleNamespace(
        model_config=SimpleNamespace(max_model_len=max_model_len, served_model_name=model, model=model),
        scheduler_config=SimpleNamespace(max_num_batched_tokens=2048, max_num_seqs=64),
    )


def value(name: str, model: str, engine: str = "0", **labels: str) -> float:
    v = REGISTRY.get_sample_value(name, {"model_name": model, "engine": engine, **labels})
    return 0.0 if v is None else v


def finished(reason, prompt, gen, max_tokens=None):
    return FinishedRequestStats(finish_reason=reason, e2e_latency=1.0, num_prompt_tokens=prompt,
                                num_generation_tokens=gen, max_tokens_param=max_tokens)


def step(decode=0, prefill=0, itl=(), done=()):
    it = IterationStats()
    it.num_generation_tokens = decode
    it.prompt_token_stats.computed = prefill
    it.inter_token_latencies_iter = list(itl)
    it.finished_requests = list(done)
    return it


def test_is_an_aggregate_stat_logger_but_not_vllms_prometheus_logger():
    # vLLM drops its own PrometheusStatLogger (all vllm:* metrics) if a plugin subclasses it.
    assert issubclass(RefPrometheusStatLogger, AggregateStatLoggerBase)
    assert issubclass(RefPrometheusStatLogger, StatLoggerBase)
    from vllm.v1.metrics.loggers import PrometheusStatLogger
    assert not issubclass(RefPrometheusStatLogger, PrometheusStatLogger)


def test_records_per_step_distributions_and_finish_reasons():
    m = "unit-a"
    log = RefPrometheusStatLogger(fake_config(m), engine_indexes=[0])
    log.log_engine_initialized()
    log.record(SchedulerStats(num_running_reqs=3, kv_cache_usage=0.42), step(prefill=100, decode=3))
    log.record(SchedulerStats(num_running_reqs=3, kv_cache_usage=0.45),
               step(decode=3, itl=[0.02, 0.5, 0.02], done=[
                   finished(FinishReason.STOP, 10, 5),
                   finished(FinishReason.LENGTH, 10, 16, max_tokens=16),   # max_tokens ran out
                   finished(FinishReason.LENGTH, 500, 12, max_tokens=400),  # context window ran out
                   finished(FinishReason.ABORT, 10, 1)]))
    assert value(PREFIX + "step_prefill_tokens_sum", m) == 100
    assert value(PREFIX + "step_prefill_tokens_count", m) == 2
    assert value(PREFIX + "step_decode_tokens_sum", m) == 6
    assert value(PREFIX + "step_running_requests_bucket", m, le="4.0") == 2
    assert value(PREFIX + "step_running_requests_bucket", m, le="2.0") == 0
    assert value(PREFIX + "kv_cache_usage_ratio_bucket", m, le="0.4") == 0
    assert value(PREFIX + "kv_cache_usage_ratio_bucket", m, le="0.5") == 2
    # One step duration, from the smallest inter-token latency (0.5 s is a resumed request).
    assert value(PREFIX + "step_duration_seconds_count", m) == 1
    assert value(PREFIX + "step_duration_seconds_sum", m) == pytest.approx(0.02)
    for reason, n in {"stop": 1, "length_max_tokens": 1, "length_context": 1, "abort": 1, "error": 0}.items():
        assert value(PREFIX + "requests_finished_total", m, reason=reason) == n, reason
    assert value(PREFIX + "last_step_timestamp_seconds", m) > 1.7e9
    assert REGISTRY.get_sample_value(PREFIX + "info", {"plugin_version": "0.1.0", "vllm_version": __import__(
        "vllm").__version__}) == 1


def test_engine_step_time_preferred_when_vllm_measures_it():
    m = "unit-details"
    log = RefPrometheusStatLogger(fake_config(m), engine_indexes=[0])
    details = SchedulerIterationDetails(iteration_index=1, num_ctx_requests=0, num_ctx_tokens=0,
                                        num_generation_requests=2, num_generation_tokens=2, elapsed_ms=7.0)
    log.record(SchedulerStats(num_running_reqs=2, iteration_details=details), step(decode=2, itl=[0.3]))
    assert value(PREFIX + "step_duration_seconds_count", m) == 1
    assert value(PREFIX + "step_duration_seconds_sum", m) == pytest.approx(0.007)


def test_data_parallel_engines_get_their_own_label():
    m = "unit-dp"
    log = RefPrometheusStatLogger(fake_config(m), engine_indexes=[0, 1])
    log.record(None, step(decode=4, done=[finished(FinishReason.STOP, 3, 4)]), engine_idx=1)
    log.record(None, step(decode=1), engine_idx=0)
    log.record(None, step(decode=100), engine_idx=7)  # not ours: ignored, no new label value
    assert value(PREFIX + "step_decode_tokens_sum", m, engine="1") == 4
    assert value(PREFIX + "step_decode_tokens_sum", m, engine="0") == 1
    assert value(PREFIX + "requests_finished_total", m, engine="1", reason="stop") == 1
    assert value(PREFIX + "requests_finished_total", m, engine="0", reason="stop") == 0
    labels = {"model_name": m, "engine": "7"}
    assert REGISTRY.get_sample_value(PREFIX + "step_decode_tokens_count", labels) is None


def test_record_never_raises(caplog):
    log = RefPrometheusStatLogger(fake_config("unit-broken"), engine_indexes=[0])
    with caplog.at_level("WARNING", logger="vllm_ref"):
        log.record(SimpleNamespace(num_running_reqs="many"), None)
        log.record(SimpleNamespace(num_running_reqs="many"), None)
    assert [r.getMessage() for r in caplog.records if "record() failed" in r.getMessage()][:1]


def test_second_engine_in_the_same_process_reuses_the_families():
    a = RefPrometheusStatLogger(fake_config("unit-twice"), engine_indexes=[0])
    b = RefPrometheusStatLogger(fake_config("unit-twice"), engine_indexes=[0])
    assert a.families is b.families


def test_names_prefixed_and_survive_vllms_own_unregister():
    names = exported_names()
    assert all(n.startswith(PREFIX) and ":" not in n for n in names)
    assert len({m.name for m in METRICS}) == len(METRICS)
    RefPrometheusStatLogger(fake_config("unit-unreg"), engine_indexes=[0])
    unregister_vllm_metrics()  # what vLLM's PrometheusStatLogger does when it is built after us
    registered = {n for c in list(REGISTRY._collector_to_names) for n in REGISTRY._collector_to_names[c]}
    assert names <= registered | {n.replace("_total", "") for n in names}


def test_finish_reason_labels_are_a_fixed_set():
    assert set(FINISH_REASONS) >= {"stop", "length_max_tokens", "length_context", "abort", "error"}
    assert len(FINISH_REASONS) <= 8  # bounded cardinality
