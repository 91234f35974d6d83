"""The metrics this plugin exports: names, meaning, buckets, and their prometheus_client objects.

Everything here is what vLLM's built-in PrometheusStatLogger (the `vllm:*` names) does not
export. Names carry the `vllm_ref_` prefix: no clash with `vllm:*`, and vLLM's own
`unregister_vllm_metrics()` (which drops collectors named `vllm:*`) leaves them alone.
Labels are `model_name` and `engine` (one value per data-parallel engine), plus a fixed `reason`
set on one counter: cardinality is bounded by the deployment, never by traffic.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Literal

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

PREFIX = "vllm_ref_"
LABELS = ("model_name", "engine")
# vLLM's FinishReason, with "length" split by what ran out: max_tokens or the context window.
FINISH_REASONS = ("stop", "length_max_tokens", "length_context", "abort", "error", "repetition", "other")


# Buckets. Token and batch buckets are capped at the engine's own limits so none is wasted.
TOKEN_BUCKETS = (0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)
BATCH_BUCKETS = (0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
KV_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class MetricSpec:
    attr: str  # the field of Families (and EngineMetrics) that holds it
    name: str  # as registered; a counter is exposed with a `_total` suffix
    kind: str  # counter | gauge | histogram
    help: str
    labels: tuple[str, ...] = LABELS
    buckets: tuple[float, ...] = ()  # histograms
    cap: str = ""  # histograms: cap the buckets at this engine limit (max_num_batched_tokens | max_num_seqs)
    # Under multi-process serving (api_server_count > 1) each process writes its own gauge value;
    # the newest step and a constant 1 are the meaningful merges.
    multiprocess_mode: Literal["max", "mostrecent"] = "max"

    def exposed(self) -> list[str]:
        """The series names Prometheus stores for this metric."""
        if self.kind == "counter":
            return [self.name + "_total"]
        if self.kind == "histogram":
            return [self.name + s for s in ("_bucket", "_sum", "_count")]
        return [self.name]

    def create(self, registry: CollectorRegistry, limits: dict[str, int]) -> Any:
        """The prometheus_client object for this metric in `registry`."""
        if self.kind == "histogram":
            buckets = capped(self.buckets, limits[self.cap]) if self.cap else self.buckets
            return Histogram(self.name, self.help, self.labels, buckets=buckets, registry=registry)
        if self.kind == "counter":
            return Counter(self.name, self.help, self.labels, registry=registry)
        return Gauge(self.name, self.help, self.labels, registry=registry, multiprocess_mode=self.multiprocess_mode)


def capped(buckets: tuple[float, ...], limit: int) -> tuple[float, ...]:
    return tuple(b for b in buckets if b < limit) + (float(limit),)


# The one declaration of every metric: names, help, labels, buckets.
METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("prefill", PREFIX + "step_prefill_tokens", "histogram",
               "Prompt tokens computed (cache hits excluded) by requests whose prefill finished in one "
               "engine step: the prefill share of each step.",
               buckets=TOKEN_BUCKETS, cap="max_num_batched_tokens"),
    MetricSpec("decode", PREFIX + "step_decode_tokens", "histogram",
               "Output tokens generated in one engine step: the decode share of each step. Its _sum "
               "is the number of tokens generated.", buckets=TOKEN_BUCKETS, cap="max_num_batched_tokens"),
    MetricSpec("running", PREFIX + "step_running_requests", "histogram",
               "Requests in the running batch at each engine step (batch occupancy distribution; "
               "compare with --max-num-seqs).", buckets=BATCH_BUCKETS, cap="max_num_seqs"),
    MetricSpec("duration", PREFIX + "step_duration_seconds", "histogram",
               "Engine step duration: the engine's own step time when iteration details are "
               "enabled, else the engine-clock interval between two consecutive decode steps.",
               buckets=DURATION_BUCKETS),
    MetricSpec("kv_usage", PREFIX + "kv_cache_usage_ratio", "histogram",
               "KV-cache usage (0-1) sampled at every engine step: the distribution the "
               "vllm:kv_cache_usage_perc gauge hides between scrapes.", buckets=KV_BUCKETS),
    MetricSpec("finished", PREFIX + "requests_finished", "counter",
               "Finished requests by reason; 'length' is split into length_max_tokens and "
               "length_context (the context window ran out).", LABELS + ("reason",)),
    MetricSpec("last_step", PREFIX + "last_step_timestamp_seconds", "gauge",
               "Unix time of the last engine step seen by this front end: alert on "
               "time() - this while requests are running (a stalled engine)."),
    MetricSpec("info", PREFIX + "info", "gauge",
               "Always 1; labels name the plugin and vLLM versions.", ("plugin_version", "vllm_version")),
)


def exported_names() -> set[str]:
    """Every series name this plugin can expose (for dashboard and collision checks)."""
    return {n for m in METRICS for n in m.exposed()}


@dataclass
class Families:
    """The metric objects of one process (one set per registry and bucket layout), by
    MetricSpec.attr."""

    objects: dict[str, Any]
    key: tuple

    def __getattr__(self, attr: str) -> Any:
        try:
            return self.__dict__["objects"][attr]
        except KeyError:
            raise AttributeError(attr) from None


_lock = threading.Lock()
_families: dict[int, Families] = {}


def families(max_num_batched_tokens: int, max_num_seqs: int,
             registry: CollectorRegistry = REGISTRY) -> Families:
    """The metric families in `registry`, created once per bucket layout.

    A second AsyncLLM in the same process (tests, notebooks) reuses them instead of failing
    on a duplicate registration; a different layout replaces them.
    """
    key = (max_num_batched_tokens, max_num_seqs)
    with _lock:
        fam = _families.get(id(registry))
        if fam is not None and fam.key == key:
            return fam
        if fam is not None:
            for obj in fam.objects.values():
                registry.unregister(obj)
        limits = {"max_num_batched_tokens": max_num_batched_tokens, "max_num_seqs": max_num_seqs}
        fam = Families({m.attr: m.create(registry, limits) for m in METRICS}, key)
        _families[id(registry)] = fam
        return fam


class EngineMetrics(SimpleNamespace):
    """The children of one engine, by MetricSpec.attr: label lookups done once, not on the hot
    path (`finished` is a dict by reason)."""


def engine_metrics(fam: Families, model_name: str, engine: int) -> EngineMetrics:
    labels = (model_name, str(engine))
    children: dict[str, Any] = {}
    for m in METRICS:
        if m.labels == LABELS:
            children[m.attr] = fam.objects[m.attr].labels(*labels)
        elif m.labels == LABELS + ("reason",):
            children[m.attr] = {r: fam.objects[m.attr].labels(*labels, r) for r in FINISH_REASONS}
    return EngineMetrics(**children)
