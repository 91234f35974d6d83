"""Test-only vLLM general plugin: a server-side record of the scheduler's admission order (used
by the scheduler's e2e tests and by `make demo`).

In the engine core it adds one patch, `sched_record`, on vLLM's Scheduler through
vllm_ref_scheduler's patching framework, beside the fair-share patch on the same class (it wraps
`add_request` and `schedule`, which fair_share leaves alone), and appends one JSON line per
event to the file named by REF_SCHED_RECORD:

    {"event": "add", ...}  the request reached the scheduler (it arrived in the engine core)
    {"event": "run", ...}  the scheduler admitted it (it is in a step's scheduled_new_reqs)

with "id" (vLLM's request id), "name" (vllm_xargs["ref_test_name"]) and "tenant"
(vllm_xargs["ref_tenant"]). Without REF_SCHED_RECORD the plugin does nothing. Like every patch
of the framework, it is applied only where REF_PATCHES selects it (unset: all).
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

from vllm_ref_common.patching import Patch, apply_selected, override

RECORD_ENV = "REF_SCHED_RECORD"
NAME_KEY = "ref_test_name"
_lock = threading.Lock()


def _record(event: str, request: Any) -> None:
    path = os.environ.get(RECORD_ENV)
    if not path or request is None:
        return
    extra = getattr(getattr(request, "sampling_params", None), "extra_args", None) or {}
    line = json.dumps({"event": event, "id": request.request_id, "name": extra.get(NAME_KEY),
                       "tenant": extra.get("ref_tenant")})
    with _lock, open(path, "a", encoding="utf-8") as f:  # one write per line: readers see whole lines
        f.write(line + "\n")


class SchedRecord(Patch):
    name = "sched_record"
    target = "vllm.v1.core.sched.scheduler:Scheduler"
    roles = ("engine_core",)

    @override
    def add_request(self, request):
        _record("add", request)
        return SchedRecord.original("add_request")(self, request)

    @override
    def schedule(self, *args, **kwargs):
        output = SchedRecord.original("schedule")(self, *args, **kwargs)
        for new in output.scheduled_new_reqs:
            _record("run", self.requests.get(new.req_id))
        return output


def register() -> None:
    if os.environ.get(RECORD_ENV):
        apply_selected([SchedRecord])
