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

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

PREFIX = "vllm_ref_"
LABELS = ("model_name", "engine")
# vLLM's FinishReason, with "length" split by what ran out: max_tokens or the context window.
FINISH_REASONS = ("stop", "length_max_tokens", "length_context", "abort", "error", "repetition", "other")


@dataclass(frozen=True)
class MetricSpec:
    name: str  # as registered; a counter is exposed with a `_total` suffix
    kind: str  # counter | gauge | histogram
    help: str
    extra_labels: tuple[str, ...] = ()

    def exposed(self) -> list[str]:
        """The series names Prometheus stores for this metric."""
        if self.kind == "counter":
            return [self.name + "_total"]
        if self.kind == "histogram":
            return [self.name + s for s in ("_bucket", "_sum", "_count")]
        return [self.name]


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(PREFIX + "step_prefill_tokens", "histogram",
               "Prompt tokens computed (cache hits excluded) by requests whose prefill finished in one "
               "engine step: the prefill share of each step."),
    MetricSpec(PREFIX + "step_decode_tokens", "histogram",
               "Output tokens generated in one engine step: the decode share of each step. Its _sum "
               "is the number of tokens generated."),
    MetricSpec(PREFIX + "step_running_requests", "histogram",
               "Requests in the running batch at each engine step (batch occupancy distribution; "
               "compare with --max-num-seqs)."),
    MetricSpec(PREFIX + "step_duration_seconds", "histogram",
               "Engine step duration: the engine's own step time when iteration details are "
               "enabled, else the engine-clock interval between two consecutive decode steps."),
    MetricSpec(PREFIX + "kv_cache_usage_ratio", "histogram",
               "KV-cache usage (0-1) sampled at every engine step: the distribution the "
               "vllm:kv_cache_usage_perc gauge hides between scrapes."),
    MetricSpec(PREFIX + "requests_finished", "counter",
               "Finished requests by reason; 'length' is split into length_max_tokens and "
               "length_context (the context window ran out).", ("reason",)),
    MetricSpec(PREFIX + "last_step_timestamp_seconds", "gauge",
               "Unix time of the last engine step seen by this front end: alert on "
               "time() - this while requests are running (a stalled engine)."),
    MetricSpec(PREFIX + "info", "gauge",
               "Always 1; labels name the plugin and vLLM versions.", ("plugin_version", "vllm_version")),
)


def exported_names() -> set[str]:
    """Every series name this plugin can expose (for dashboard and collision checks)."""
    return {n for m in METRICS for n in m.exposed()}


# Buckets. Token and batch buckets are capped at the engine's own limits so none is wasted.
TOKEN_BUCKETS = (0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)
BATCH_BUCKETS = (0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
KV_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def capped(buckets: tuple[float, ...], limit: int) -> tuple[float, ...]:
    return tuple(b for b in buckets if b < limit) + (float(limit),)


@dataclass
class Families:
    """The labelled metric objects of one process (one set per registry and bucket layout)."""

    prefill: Histogram
    decode: Histogram
    running: Histogram
    duration: Histogram
    kv_usage: Histogram
    finished: Counter
    last_step: Gauge
    info: Gauge
    key: tuple


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
            for m in (fam.prefill, fam.decode, fam.running, fam.duration, fam.kv_usage, fam.finished,
                      fam.last_step, fam.info):
                registry.unregister(m)
        spec = {m.name: m for m in METRICS}

        def hist(name: str, buckets: tuple[float, ...]) -> Histogram:
            return Histogram(name, spec[name].help, LABELS, buckets=buckets, registry=registry)

        fam = Families(
            prefill=hist(PREFIX + "step_prefill_tokens", capped(TOKEN_BUCKETS, max_num_batched_tokens)),
            decode=hist(PREFIX + "step_decode_tokens", capped(TOKEN_BUCKETS, max_num_batched_tokens)),
            running=hist(PREFIX + "step_running_requests", capped(BATCH_BUCKETS, max_num_seqs)),
            duration=hist(PREFIX + "step_duration_seconds", DURATION_BUCKETS),
            kv_usage=hist(PREFIX + "kv_cache_usage_ratio", KV_BUCKETS),
            finished=Counter(PREFIX + "requests_finished", spec[PREFIX + "requests_finished"].help,
                             LABELS + ("reason",), registry=registry),
            # Under multi-process serving (api_server_count > 1) each process writes its own
            # value; the newest step and a constant 1 are the meaningful merges.
            last_step=Gauge(PREFIX + "last_step_timestamp_seconds",
                            spec[PREFIX + "last_step_timestamp_seconds"].help, LABELS,
                            registry=registry, multiprocess_mode="max"),
            info=Gauge(PREFIX + "info", spec[PREFIX + "info"].help,
                       ("plugin_version", "vllm_version"), registry=registry, multiprocess_mode="max"),
            key=key,
        )
        _families[id(registry)] = fam
        return fam


@dataclass
class EngineMetrics:
    """The children of one engine: label lookups done once, not on the hot path."""

    prefill: object
    decode: object
    running: object
    duration: object
    kv_usage: object
    last_step: object
    finished: dict[str, object]


def engine_metrics(fam: Families, model_name: str, engine: int) -> EngineMetrics:
    labels = (model_name, str(engine))
    return EngineMetrics(
        prefill=fam.prefill.labels(*labels),
        decode=fam.decode.labels(*labels),
        running=fam.running.labels(*labels),
        duration=fam.duration.labels(*labels),
        kv_usage=fam.kv_usage.labels(*labels),
        last_step=fam.last_step.labels(*labels),
        finished={r: fam.finished.labels(*labels, r) for r in FINISH_REASONS},
    )
