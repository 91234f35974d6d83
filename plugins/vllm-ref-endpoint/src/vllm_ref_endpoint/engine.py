"""The engine-side half: methods the routes call, added to vLLM's EngineCore and workers.

The routes reach them only through vLLM's EngineClient: engine-core utility calls
(`call_utility_all_async`, one answer per data-parallel engine) and `collective_rpc` (one answer
per worker, which looks the name up on WorkerWrapperBase). They only read, except
`ref_endpoint_set_weights`, which the routes call only when writes are enabled.
"""

from __future__ import annotations

import sys
from typing import Any

from vllm_ref_common.inventory import process_report
from vllm_ref_common.patching import Patch, add


def _scheduler_plugin() -> Any:
    # vllm-ref-scheduler is optional: read where vLLM loaded it, never imported from here.
    return sys.modules.get("vllm_ref_scheduler")


def _queue(engine: Any) -> Any:
    # The fair-share queue where ref_scheduler is applied here, else None (not installed, not
    # selected, or outside its vLLM range).
    plugin = _scheduler_plugin()
    return plugin.queue_of(getattr(engine, "scheduler", None)) if plugin is not None else None


class EngineMethods(Patch):
    name = "ref_endpoint_engine"
    target = "vllm.v1.engine.core:EngineCore"
    roles = ("engine_core",)

    @add
    def ref_endpoint_report(self) -> dict[str, Any]:
        """This engine-core process's plugin report (vllm_ref_common.inventory)."""
        return process_report()

    @add
    def ref_endpoint_tenants(self) -> dict[str, Any] | None:
        """The fair-share policy's tenants, or None where it is not active."""
        queue = _queue(self)
        return None if queue is None else queue.snapshot()

    @add
    def ref_endpoint_set_weights(self, text: str) -> dict[str, Any] | None:
        """New tenant weights ("gold=3,free=1", validated like REF_SCHEDULER_WEIGHTS) from the
        next admission on; the new state, or None where the policy is not active. Runs between
        two engine steps, on the engine core's own thread."""
        queue = _queue(self)
        if queue is None:
            return None
        # Parsed in full before the queue is touched; set_weights changes the queue and builds
        # its report in one step that happens whole or not at all, so a refusal changes nothing.
        report = queue.set_weights(_scheduler_plugin().parse_weights(text, "weights"))
        return report if report is not None else queue.snapshot()  # a scheduler older than this one


class WorkerMethods(Patch):
    name = "ref_endpoint_worker"
    target = "vllm.v1.worker.worker_base:WorkerWrapperBase"
    roles = ("worker",)

    @add
    def ref_endpoint_report(self) -> dict[str, Any]:
        """This worker process's plugin report (vllm_ref_common.inventory)."""
        return process_report()


PATCHES = (EngineMethods, WorkerMethods)
