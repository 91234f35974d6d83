"""The connector's counters on vLLM's own KV-connector stats path, so they reach Prometheus.

Each step vLLM asks every worker's connector, and the engine core's, for the stats of the
interval since it last asked (`get_kv_connector_stats`), sums them across workers
(`KVConnectorStats.aggregate`) and hands the dict to the front end, where vLLM's Prometheus
logger (the one behind `vllm serve`'s /metrics) feeds it to the metrics the connector class
built (`build_prom_metrics`). That is vLLM's route for any connector's own metrics, and it
needs no other plugin: the counters appear as `vllm:ref_kv_<name>_total` with vLLM's
`model_name` and `engine` labels wherever vLLM's /metrics is served, next to the metrics of
the ref_prometheus stat-logger plugin when that runs too.
"""

from __future__ import annotations

from typing import Any

from vllm.distributed.kv_transfer.kv_connector.v1.metrics import KVConnectorPromMetrics, KVConnectorStats

from . import PLUGIN, STATE

# The counters exported, from STATE: (name, help). Engine-core half first, then the workers'.
COUNTERS = {
    "lookups": "requests the scheduler half looked up in the store",
    "hit_blocks": "prompt blocks found in the store at lookup",
    "miss_blocks": "prompt blocks not in the store at lookup",
    "loaded_blocks": "blocks loaded into the KV cache (all workers)",
    "tokens_loaded": "prompt tokens whose KV was loaded instead of computed (all workers)",
    "bytes_loaded": "bytes read from verified block files (all workers)",
    "load_s": "seconds spent reading, verifying and copying blocks (all workers)",
    "load_failed": "block files rejected (corrupt, truncated, foreign) or unreadable: recomputed",
    "saved_blocks": "blocks written (all workers)",
    "tokens_saved": "prompt tokens whose KV was written (all workers)",
    "bytes_saved": "payload bytes written (all workers)",
    "save_s": "seconds spent copying out and writing blocks (all workers; the writes on a background thread)",
    "save_dropped": "blocks not saved because the background writes fell behind (all workers)",
    "evicted": "files removed by the size cap",
}


class RefKVStats(KVConnectorStats):
    """Counter increments of one interval: {name: number}, summed across processes."""

    def reset(self) -> None:
        self.data = {}

    def aggregate(self, other: KVConnectorStats) -> KVConnectorStats:
        for k, v in other.data.items():
            self.data[k] = self.data.get(k, 0) + v
        return self

    def reduce(self) -> dict[str, int | float]:
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in self.data.items()}

    def is_empty(self) -> bool:
        return not any(self.data.values())


class Interval:
    """What STATE gained since the last `take()` in this process (one per connector half)."""

    def __init__(self) -> None:
        self._last = {k: STATE[k] for k in COUNTERS}

    def take(self) -> RefKVStats | None:
        now = {k: STATE[k] for k in COUNTERS}
        delta = {k: now[k] - self._last[k] for k in COUNTERS if now[k] != self._last[k]}
        self._last = now
        return RefKVStats(data=delta) if delta else None


class RefKVPromMetrics(KVConnectorPromMetrics):
    """One Prometheus counter per entry of COUNTERS, per engine (vLLM's labels)."""

    def __init__(self, vllm_config: Any, metric_types: dict[type, type], labelnames: list[str],
                 per_engine_labelvalues: dict[int, list[object]]) -> None:
        super().__init__(vllm_config, metric_types, labelnames, per_engine_labelvalues)
        self.counters: dict[str, dict[int, Any]] = {}
        for name, doc in COUNTERS.items():
            metric = self._counter_cls(name=f"vllm:{PLUGIN}_{name}", documentation=f"{PLUGIN}: {doc}",
                                       labelnames=labelnames)
            self.counters[name] = {idx: metric.labels(*values) for idx, values in per_engine_labelvalues.items()}

    def observe(self, transfer_stats_data: dict[str, Any], engine_idx: int = 0) -> None:
        for name, value in transfer_stats_data.items():
            per_engine = self.counters.get(name)
            if per_engine is not None and engine_idx in per_engine and value > 0:
                per_engine[engine_idx].inc(value)
