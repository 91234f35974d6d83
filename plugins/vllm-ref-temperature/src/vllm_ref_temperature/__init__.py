"""vllm-ref-temperature: per-request temperature control as a vLLM logits processor.

Entry point `ref_temperature` (group `vllm.logits_processors`) ->
`vllm_ref_temperature:TemperatureLogitsProcessor`. vLLM loads that group in every engine
whatever VLLM_PLUGINS says, and a failed load stops start-up, so this module never raises:
outside the supported vLLM range (or without vLLM) it logs one warning and the class it exports
leaves every request untouched, and rejects requests that ask for it by name.
"""

from __future__ import annotations

from vllm_ref_common import check_vllm, vllm_version

from . import processor
from .params import ALL_KEYS, PLUGIN, TempSpec, parse
from .processor import TemperatureLogitsProcessor

SUPPORTED_VLLM = ">=0.32,<0.34"
OVERRIDE_ENV = "VLLM_REF_TEMPERATURE_ANY_VERSION"

processor.ENABLED = check_vllm(PLUGIN, SUPPORTED_VLLM, override_env=OVERRIDE_ENV)
if not processor.ENABLED:
    _v = vllm_version()
    processor.DISABLED_REASON = (
        "vLLM is not importable" if _v is None
        else f"vLLM {_v} is outside the supported range {SUPPORTED_VLLM} (set {OVERRIDE_ENV}=1 to override)")

__all__ = ["ALL_KEYS", "PLUGIN", "SUPPORTED_VLLM", "TempSpec", "TemperatureLogitsProcessor", "parse"]
