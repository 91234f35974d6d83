"""A minimal patch on vLLM's scheduler, built on the vendored patching framework.

StepTimer times every Scheduler.schedule() call in the engine core and logs one warning the
first time a call takes longer than VLLM_PATCH_EXAMPLE_SLOW_MS (default 50). A scheduler
reports what it measured with `scheduler.example_step_stats()`.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

from .patching import Patch, add, apply_selected, override

logger = logging.getLogger("vllm_patch_example")
_timed = {"steps": 0}  # all schedulers of this process, for the probe check below


class StepTimer(Patch):
    name = "step_timer"
    target = "vllm.v1.core.sched.scheduler:Scheduler"
    min_vllm, max_vllm = "0.28", "0.34"
    roles = ("engine_core",)

    @override
    def schedule(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        out = StepTimer.original("schedule")(self, *args, **kwargs)
        ms = (time.perf_counter() - start) * 1000
        # `self` is the Scheduler: the numbers live on it, one set per scheduler.
        self.example_steps = getattr(self, "example_steps", 0) + 1
        _timed["steps"] += 1
        self.example_slowest_ms = max(getattr(self, "example_slowest_ms", 0.0), ms)
        if ms > float(os.environ.get("VLLM_PATCH_EXAMPLE_SLOW_MS", "50")) and not getattr(
                self, "example_warned", False):
            self.example_warned = True
            logger.warning("schedule() took %.1f ms with %d waiting requests", ms, len(self.waiting))
        return out

    @add
    def example_step_stats(self) -> dict[str, float]:
        return {"steps": getattr(self, "example_steps", 0),
                "slowest_ms": getattr(self, "example_slowest_ms", 0.0)}


def register() -> None:
    """vLLM general-plugin entry point: runs in every vLLM process, patches the engine core."""
    try:
        import vllm  # noqa: F401
    except ImportError:
        logger.warning("vllm_patch_example: vLLM is not importable here; nothing patched.")
        return
    apply_selected([StepTimer])


# Probe checks for the repository's example test: cheap, read-only, no imports.
def is_patched() -> bool:
    mod = sys.modules.get("vllm.v1.core.sched.scheduler")
    return mod is not None and vars(mod.Scheduler).get("schedule") is vars(StepTimer)["schedule"]


def steps_timed() -> bool:
    """True once a patched scheduler in this process has timed a step."""
    return _timed["steps"] > 0
