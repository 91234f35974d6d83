"""vllm-ref-scheduler: weighted fair share between tenants, applied as surgical patches.

Entry point `ref_scheduler` (group `vllm.general_plugins`). In every vLLM process it checks the
vLLM version, then applies the patches REF_PATCHES selects (all when unset) whose roles match
the process: the scheduler patch in the engine core, request validation in the front end.
The framework is `vllm_ref_common.patching`; `status()` says what took effect here.
"""

from __future__ import annotations

import os
import sys
from fractions import Fraction
from typing import Any

from vllm_ref_common import any_version_env, check_vllm, gate_verdict, setting

PLUGIN = "ref_scheduler"
SUPPORTED_VLLM = ">=0.28,<0.34"
ANY_VERSION_ENV = any_version_env(PLUGIN)
WEIGHTS_ENV = setting(PLUGIN, "weights")

__all__ = ["ANY_VERSION_ENV", "PLUGIN", "SUPPORTED_VLLM", "WEIGHTS_ENV", "parse_weights", "queue_of", "register",
           "status"]


def register() -> None:
    """vLLM general-plugin entry point; runs once in each vLLM process."""
    if not check_vllm(PLUGIN, SUPPORTED_VLLM):
        return
    # Imported only now: fair_share imports vLLM.
    from vllm_ref_common.patching import apply_selected

    from .fair_share import PATCHES, parse_weights

    parse_weights(os.environ.get(WEIGHTS_ENV))  # a bad setting fails start-up in every process
    apply_selected(PATCHES)


def parse_weights(text: str | None, source: str = WEIGHTS_ENV) -> dict[str, Fraction]:
    """"gold=3,free=0.5" -> {"gold": 3, "free": 1/2}, validated as WEIGHTS_ENV is (ValueError
    naming the plugin, `source` and the accepted form). Imports vLLM: for processes that run it."""
    from .fair_share import parse_weights

    return parse_weights(text, source)


def queue_of(scheduler: Any) -> Any:
    """The fair-share queue of a vLLM Scheduler (`snapshot()`, `set_weights()`), or None where
    the policy is not applied in this process. Imports nothing: reads only what is loaded."""
    ours = sys.modules.get(f"{__name__}.fair_share")
    return ours.queue_of(scheduler) if ours is not None else None


def status() -> dict[str, Any]:
    """What this plugin did in this process; cheap, imports nothing, safe from any thread.

    {"effect": the fair-share scheduler runs here (engine core) or requests are validated here
    (front end), "patches": names applied here, "scheduler": bool, "validation": bool,
    "gate": the version gate's verdict (None where register() never ran)}.
    """
    ours = sys.modules.get(f"{__name__}.fair_share")
    patching = sys.modules.get("vllm_ref_common.patching")
    installed = {"scheduler": False, "validation": False}
    if ours is not None:
        installed = {"scheduler": ours.FairShareScheduler.installed(), "validation": ours.TenantValidation.installed()}
    return {"effect": any(installed.values()), "patches": sorted(patching.applied_patches()) if patching else [],
            **installed, "gate": gate_verdict(PLUGIN)}
