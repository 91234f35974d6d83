"""A minimal vLLM stat logger: counts generated tokens per engine under its own metric name.

vLLM loads it in the front end of `vllm serve` / AsyncLLM (never in the offline LLM). It must
subclass StatLoggerBase; the aggregate base gives one instance for all data-parallel engines.
Do not subclass PrometheusStatLogger: vLLM would drop its own and every vllm:* metric with it.
"""

from prometheus_client import Counter
from vllm.v1.metrics.loggers import AggregateStatLoggerBase

# Created once per process: a second AsyncLLM in the same process must not register it twice.
TOKENS = Counter("my_tokens", "Tokens generated, per engine.", ["model_name", "engine"])


class MyStatLogger(AggregateStatLoggerBase):
    def __init__(self, vllm_config, engine_indexes=None):
        model = str(vllm_config.model_config.served_model_name)
        # Resolve labels once; record() runs on the engine's hot path.
        self.tokens = {i: TOKENS.labels(model, str(i)) for i in engine_indexes or [0]}

    def record(self, scheduler_stats, iteration_stats, mm_cache_stats=None, engine_idx=0):
        if iteration_stats is not None and engine_idx in self.tokens:
            self.tokens[engine_idx].inc(iteration_stats.num_generation_tokens)

    def log_engine_initialized(self):
        pass
