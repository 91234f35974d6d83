"""The counters on vLLM's KV-connector stats path: interval increments per process, summed across
processes, fed to real prometheus_client counters the way vLLM's Prometheus logger does."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


def test_interval_sum_and_prometheus(fresh_state):
    from vllm_ref_kv.connector import RefKVConnector
    from vllm_ref_kv.metrics import COUNTERS, Interval, RefKVPromMetrics

    worker = Interval()
    assert worker.take() is None  # nothing happened: nothing to send
    fresh_state["loaded_blocks"] += 3
    fresh_state["bytes_loaded"] += 3000
    a = worker.take()
    assert a.data == {"loaded_blocks": 3, "bytes_loaded": 3000} and worker.take() is None
    fresh_state["loaded_blocks"] += 2
    b = worker.take()
    total = RefKVConnector.build_kv_connector_stats(a.to_dict()).aggregate(b)  # as vLLM sums the workers
    assert total.reduce() == {"loaded_blocks": 5, "bytes_loaded": 3000} and not total.is_empty()

    registry = CollectorRegistry()

    def in_registry(cls):
        class Registered(cls):  # vLLM passes its own (multiprocess-aware) classes the same way
            def __init__(self, *args, **kwargs):
                super().__init__(*args, registry=registry, **kwargs)
        return Registered

    types = {c: in_registry(c) for c in (Counter, Gauge, Histogram)}

    class Config:
        kv_transfer_config = None

    prom = RefKVPromMetrics(Config(), types, ["model_name", "engine"], {0: ["m", "0"]})
    prom.observe(total.reduce(), engine_idx=0)
    text = generate_latest(registry).decode()
    assert 'vllm:ref_kv_loaded_blocks_total{engine="0",model_name="m"} 5.0' in text
    assert 'vllm:ref_kv_bytes_loaded_total{engine="0",model_name="m"} 3000.0' in text
    assert all(f"vllm:ref_kv_{name}_total" in text for name in COUNTERS)
