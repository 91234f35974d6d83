"""vllm-ref-temperature: per-request temperature control as a vLLM logits processor.

Entry point `ref_temperature` (group `vllm.logits_processors`) ->
`vllm_ref_temperature:TemperatureLogitsProcessor`. vLLM loads that group in every engine
whatever VLLM_PLUGINS says, and a failed load stops start-up, so this package never raises:
outside the supported vLLM range (or without vLLM) it logs one warning and the class it exports
leaves every request untouched, and rejects requests that ask for it by name.

The class (and with it vLLM and torch) is imported on first access, so `status()` can be read
from any process without importing them.
"""

from __future__ import annotations

from typing import Any

from vllm_ref_common import any_version_env, gate_verdict

PLUGIN = "ref_temperature"
SUPPORTED_VLLM = ">=0.32,<0.34"
ANY_VERSION_ENV = any_version_env(PLUGIN)
# What this process did, for status(), written where it happens: processors built per model
# runner (processor.py), and whether a step divided any row (state.py).
STATE: dict[str, Any] = {"v1": 0, "v2": 0, "scaled": False}

__all__ = ["ALL_KEYS", "ANY_VERSION_ENV", "PLUGIN", "STATE", "SUPPORTED_VLLM", "TempSpec", "TemperatureLogitsProcessor",
           "parse", "status"]


def __getattr__(name: str) -> Any:
    # The entry point's class and the request-key parser, imported only when asked for.
    if name == "TemperatureLogitsProcessor":
        from .processor import TemperatureLogitsProcessor

        return TemperatureLogitsProcessor
    if name in ("ALL_KEYS", "TempSpec", "parse"):
        from . import params

        return getattr(params, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def status() -> dict[str, Any]:
    """What this plugin did in this process; cheap, imports nothing, safe from any thread.

    {"effect": a processor was built here (vLLM builds them in the workers), "v1"/"v2": how many
    per model runner, "scaled": a step here divided at least one row, "gate": the version
    gate's verdict (None where the class was never loaded)}.
    """
    return {"effect": STATE["v1"] + STATE["v2"] > 0, **STATE, "gate": gate_verdict(PLUGIN)}
