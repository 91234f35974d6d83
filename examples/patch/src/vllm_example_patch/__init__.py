"""A minimal patch on vLLM's scheduler, built on the small patching framework in patching.py.

StepTimer times every Scheduler.schedule() call in the engine core and logs one warning the
first time a call takes longer than EXAMPLE_PATCH_SLOW_MS (default 50). A scheduler
reports what it measured with `scheduler.example_step_stats()`.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from typing import Any

from packaging.specifiers import SpecifierSet

from . import patching
from .patching import Patch, add, override

PLUGIN = "example_patch"
SUPPORTED_VLLM = ">=0.28,<0.34"  # the vLLM releases this patch was tested on
ANY_VERSION_ENV = "EXAMPLE_PATCH_ANY_VERSION"  # =1: patch any release (apply() still checks the methods)
SLOW_MS_ENV = "EXAMPLE_PATCH_SLOW_MS"
logger = logging.getLogger(f"vllm.{PLUGIN}")
_seen = {"timed": False}  # set by the first timed step of any scheduler here (status())


class StepTimer(Patch):
    name = "step_timer"
    target = "vllm.v1.core.sched.scheduler:Scheduler"

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


def vllm_supported() -> bool:
    """Whether this process runs a vLLM in SUPPORTED_VLLM (or ANY_VERSION_ENV=1 says to go
    ahead anyway); outside the range, one warning that names the way out."""
    try:
        from vllm import __version__ as version
    except ImportError:
        return False  # not inside vLLM: nothing to patch
    # prereleases=True: a dev build of a tested release counts as that release.
    if SpecifierSet(SUPPORTED_VLLM).contains(version, prereleases=True) or os.environ.get(ANY_VERSION_ENV) == "1":
        return True
    logger.warning("%s: vLLM %s is outside the tested range %s; not patching. Set %s=1 to patch anyway.",
                   PLUGIN, version, SUPPORTED_VLLM, ANY_VERSION_ENV)
    return False


def in_engine_core() -> bool:
    """Whether this process runs vLLM's scheduler: the one vLLM starts as "EngineCore" (or
    "EngineCore_DP<n>"), or the front end itself where VLLM_ENABLE_V1_MULTIPROCESSING=0."""
    name = multiprocessing.current_process().name
    return name.startswith("EngineCore") or (
        name == "MainProcess" and os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING") == "0")


def register() -> None:
    """vLLM general-plugin entry point: runs in every vLLM process, patches the engine core."""
    if in_engine_core() and vllm_supported():
        patching.apply(StepTimer)


def status() -> dict:
    """{"effect": the patch runs on vLLM's Scheduler here, "timed": a step was timed here}
    (cheap, read-only, no imports: the repository's example test reads it in every process)."""
    return {"effect": StepTimer.installed(), "timed": _seen["timed"]}
