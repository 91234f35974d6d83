"""Probe checks run inside every vLLM process (cheap, read-only, no imports)."""

import sys


def _installed(module: str, owner: str, patch: str, method: str) -> bool:
    target, ours = sys.modules.get(module), sys.modules.get("vllm_ref_scheduler.fair_share")
    if target is None or ours is None:
        return False
    fn = vars(getattr(ours, patch)).get(method)
    return vars(getattr(target, owner)).get(method) is fn


def scheduler_patched() -> bool:
    """Is vLLM's Scheduler running the fair-share methods in this process?"""
    return _installed("vllm.v1.core.sched.scheduler", "Scheduler", "FairShareScheduler",
                      "_update_after_schedule")


def validation_patched() -> bool:
    return _installed("vllm.sampling_params", "SamplingParams", "TenantValidation", "_verify_args")


def applied() -> list:
    """Names of the patches applied in this process, sorted (plugins load in no fixed order)."""
    patching = sys.modules.get("vllm_ref_scheduler.patching")
    return sorted(patching.applied_patches()) if patching else []
