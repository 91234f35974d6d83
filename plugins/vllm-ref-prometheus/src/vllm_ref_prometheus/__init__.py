"""vllm-ref-prometheus: a vLLM stat-logger plugin exporting what vLLM's own /metrics lacks.

vLLM loads the entry point `ref_prometheus` (group `vllm.stat_logger_plugins`) in the front
end of `vllm serve` and of any `AsyncLLM`; the class lives in `vllm_ref_prometheus.logger`.
This top-level module stays light (no vLLM import) so that dashboards, tests and the demo
can read the metric names, and `status()`, without starting vLLM.
"""

from __future__ import annotations

from typing import Any

from vllm_ref_common import any_version_env, gate_verdict

PLUGIN = "ref_prometheus"  # first: the submodules below read it
SUPPORTED_VLLM = ">=0.28,<0.34"
ANY_VERSION_ENV = any_version_env(PLUGIN)
# What this process did, for status(), written where it happens: logger.py builds the loggers.
STATE: dict[str, int] = {"loggers": 0}

from .config import Config, ConfigError, load_config  # noqa: E402
from .metrics import FINISH_REASONS, LABELS, METRICS, PREFIX, MetricSpec, exported_names  # noqa: E402

__all__ = [
    "ANY_VERSION_ENV", "FINISH_REASONS", "LABELS", "METRICS", "PLUGIN", "PREFIX", "STATE", "SUPPORTED_VLLM",
    "Config", "ConfigError", "MetricSpec", "exported_names", "load_config", "status",
]


def status() -> dict[str, Any]:
    """What this plugin did in this process; cheap, imports nothing, safe from any thread.

    {"effect": vLLM built this plugin's stat logger here (the front end of an AsyncLLM or
    `vllm serve`), "loggers": how many, "gate": the version gate's verdict (None where vLLM
    never loaded the class)}.
    """
    return {"effect": STATE["loggers"] > 0, **STATE, "gate": gate_verdict(PLUGIN)}
