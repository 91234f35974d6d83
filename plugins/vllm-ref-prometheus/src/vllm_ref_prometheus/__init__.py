"""vllm-ref-prometheus: a vLLM stat-logger plugin exporting what vLLM's own /metrics lacks.

vLLM loads the entry point `ref_prometheus` (group `vllm.stat_logger_plugins`) in the front
end of `vllm serve` and of any `AsyncLLM`; the class lives in `vllm_ref_prometheus.logger`.
This top-level module stays light (no vLLM import) so that dashboards, tests and the demo
can read the metric names without starting vLLM.
"""

from .config import Config, ConfigError, load_config
from .metrics import FINISH_REASONS, LABELS, METRICS, PREFIX, MetricSpec, exported_names

PLUGIN = "ref_prometheus"
SUPPORTED_VLLM = ">=0.28,<0.34"
ANY_VERSION_ENV = "VLLM_REF_PROMETHEUS_ANY_VERSION"

__all__ = [
    "ANY_VERSION_ENV", "FINISH_REASONS", "LABELS", "METRICS", "PLUGIN", "PREFIX", "SUPPORTED_VLLM",
    "Config", "ConfigError", "MetricSpec", "exported_names", "load_config",
]
