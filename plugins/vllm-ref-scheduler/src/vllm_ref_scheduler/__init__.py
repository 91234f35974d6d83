"""vllm-ref-scheduler: weighted fair share between tenants, applied as surgical patches.

Entry point `ref_scheduler` (group `vllm.general_plugins`). In every vLLM process it checks the
vLLM version, then applies the patches VLLM_CUSTOM_PATCHES selects (all when unset) whose roles
match the process: the scheduler patch in the engine core, request validation in the front end.
The framework itself is `vllm_ref_scheduler.patching`.
"""

from __future__ import annotations

import os

from vllm_ref_common import check_vllm

SUPPORTED_VLLM = ">=0.28,<0.34"
OVERRIDE_ENV = "VLLM_REF_SCHEDULER_ANY_VERSION"

__all__ = ["OVERRIDE_ENV", "SUPPORTED_VLLM", "register"]


def register() -> None:
    """vLLM general-plugin entry point; runs once in each vLLM process."""
    if not check_vllm("ref_scheduler", SUPPORTED_VLLM, override_env=OVERRIDE_ENV):
        return
    # Imported only now: both modules import vLLM.
    from .fair_share import PATCHES, WEIGHTS_ENV, parse_weights
    from .patching import apply_selected

    parse_weights(os.environ.get(WEIGHTS_ENV))  # a bad setting fails start-up in every process
    forced = os.environ.get(OVERRIDE_ENV, "").strip().lower() in ("1", "true", "yes", "on")
    apply_selected(PATCHES, ignore_version=forced)
