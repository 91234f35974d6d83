"""A minimal patch on vLLM's scheduler, built on the vendored patching framework.

StepTimer times every Scheduler.schedule() call in the engine core and logs one warning the
first time a call takes longer than EXAMPLE_PATCH_SLOW_MS (default 50). A scheduler
reports what it measured with `scheduler.example_step_stats()`.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from ._gate import check_vllm, setting
from .patching import Patch, add, apply_selected, override

PLUGIN = "example_patch"
SUPPORTED_VLLM = ">=0.28,<0.34"  # override: EXAMPLE_PATCH_ANY_VERSION=1
SLOW_MS_ENV = setting(PLUGIN, "slow_ms")  # EXAMPLE_PATCH_SLOW_MS
logger = logging.getLogger(f"vllm.{PLUGIN}")
_seen = {"timed": False}  # set by the first timed step of any scheduler here (status())


class StepTimer(Patch):
    name = "step_timer"
    target = "vllm.v1.core.sched.scheduler:Scheduler"
    roles = ("engine_core",)  # no vLLM range of its own: register()'s gate is the package's

    @override
    def schedule(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        out = StepTimer.original("schedule")(self, *args, **kwargs)
        ms = (time.perf_counter() - start) * 1000
        # `self` is the Scheduler: the numbers live on it, one set per scheduler.
        self.example_steps = getattr(self, "example_steps", 0) + 1
        _seen["timed"] = True
        self.example_slowest_ms = max(getattr(self, "example_slowest_ms", 0.0), ms)
        if ms > float(os.environ.get(SLOW_MS_ENV, "50")) and not getattr(
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
    if check_vllm(PLUGIN, SUPPORTED_VLLM):  # one warning, then out of the way
        apply_selected([StepTimer])


def status() -> dict:
    """{"effect": the patch runs on vLLM's Scheduler here, "timed": a step was timed here}
    (cheap, read-only, no imports: the repository's example test reads it in every process)."""
    return {"effect": StepTimer.installed(), "timed": _seen["timed"]}
