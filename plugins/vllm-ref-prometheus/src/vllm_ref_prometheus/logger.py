"""The stat logger vLLM loads from the entry point `ref_prometheus` (group vllm.stat_logger_plugins).

vLLM requires a StatLoggerBase subclass and builds it in the front end of every AsyncLLM
(`vllm serve` included; the offline `LLM` never loads stat-logger plugins). Subclassing the
aggregate base makes vLLM build ONE instance for all data-parallel engines, so each engine gets
its own `engine` label on the same metric families. It deliberately does NOT subclass
PrometheusStatLogger: vLLM would then drop its built-in logger and every `vllm:*` metric.

record() runs on the front end's output loop once per engine step: it only observes
pre-labelled children, and it never raises (an exception there would fail the engine).
"""

from __future__ import annotations

import importlib.metadata
import logging
from typing import Any

from vllm_ref_common import check_vllm, vllm_version, warn_once

from . import PLUGIN, STATE, SUPPORTED_VLLM, export
from .config import load_config
from .metrics import EngineMetrics, engine_metrics, families

logger = logging.getLogger("vllm_ref.prometheus")

ACTIVE = check_vllm(PLUGIN, SUPPORTED_VLLM)

_Base: Any = object
_LENGTH = None
_REASONS: dict[int, str] = {}
if ACTIVE:
    from vllm.v1.engine import FinishReason
    from vllm.v1.metrics import loggers as _vllm_loggers

    _Base = getattr(_vllm_loggers, "AggregateStatLoggerBase", _vllm_loggers.StatLoggerBase)
    _LENGTH = int(FinishReason.LENGTH)
    _REASONS = {int(r): str(r) if str(r) in ("stop", "abort", "error", "repetition") else "other"
                for r in FinishReason}
elif vllm_version() is not None:
    # Outside the supported range vLLM still loads the entry point and refuses anything that
    # is not a StatLoggerBase; stay loadable and inert.
    try:
        from vllm.v1.metrics.loggers import StatLoggerBase as _Base
    except Exception:
        _Base = object


def _plugin_version() -> str:
    try:
        return importlib.metadata.version("vllm-ref-prometheus")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class RefPrometheusStatLogger(_Base):
    """Per-step engine metrics under the `vllm_ref_` prefix (see metrics.METRICS)."""

    def __init__(self, vllm_config: Any, engine_indexes: list[int] | int | None = None):
        # On a vLLM without the aggregate base this is built once per engine with an int.
        if engine_indexes is None:
            engine_indexes = [0]
        elif isinstance(engine_indexes, int):
            engine_indexes = [engine_indexes]
        self.engine_indexes = list(engine_indexes)
        self.engines: dict[int, EngineMetrics] = {}
        if not ACTIVE:
            return
        config = load_config()  # a bad setting fails start-up here, with the variable named
        model = vllm_config.model_config
        sched = vllm_config.scheduler_config
        self.max_model_len = int(model.max_model_len)
        self.families = families(int(sched.max_num_batched_tokens), int(sched.max_num_seqs))
        model_name = str(model.served_model_name or model.model)
        self.engines = {i: engine_metrics(self.families, model_name, i) for i in self.engine_indexes}
        export.start(config)
        STATE["loggers"] += 1

    def record(self, scheduler_stats: Any, iteration_stats: Any, mm_cache_stats: Any = None,
               engine_idx: int = 0) -> None:
        m = self.engines.get(engine_idx)
        if m is None:
            return
        try:
            timed = False
            if scheduler_stats is not None:
                m.running.observe(scheduler_stats.num_running_reqs)
                m.kv_usage.observe(scheduler_stats.kv_cache_usage)
                details = getattr(scheduler_stats, "iteration_details", None)
                if details is not None:
                    m.duration.observe(details.elapsed_ms / 1000.0)
                    timed = True
            if iteration_stats is None:
                return
            m.prefill.observe(_prefill_tokens(iteration_stats))
            m.decode.observe(iteration_stats.num_generation_tokens)
            m.last_step.set(iteration_stats.iteration_timestamp)
            if not timed and iteration_stats.inter_token_latencies_iter:
                # Every request decoding in consecutive steps reports the same engine-clock
                # interval; the smallest leaves out requests resumed after a preemption.
                m.duration.observe(min(iteration_stats.inter_token_latencies_iter))
            for req in iteration_stats.finished_requests:
                m.finished[self._reason(req)].inc()
        except Exception as exc:  # never let metrics take the engine down
            warn_once(f"{PLUGIN}: record() failed and skips this step: {type(exc).__name__}: {exc}")

    def _reason(self, req: Any) -> str:
        reason = int(req.finish_reason)
        if reason != _LENGTH:
            return _REASONS.get(reason, "other")
        if req.num_prompt_tokens + req.num_generation_tokens >= self.max_model_len:
            return "length_context"
        return "length_max_tokens"

    def log_engine_initialized(self) -> None:
        if ACTIVE:
            self.families.info.labels(_plugin_version(), vllm_version() or "unknown").set(1)

    def log(self) -> None:
        pass

    def record_admission_rejection(self, reason: str) -> None:
        pass


def _prefill_tokens(iteration_stats: Any) -> int:
    try:
        return iteration_stats.prompt_token_stats.computed
    except AttributeError:  # vLLM before the prompt-token breakdown
        return iteration_stats.num_prompt_tokens
