"""ref_scheduler in the demo: weighted fair share between tenants, visible in an admission order.

The server gets one sequence slot (--max-num-seqs 1; the other plugins' exercises send one
request at a time, so they only queue). A long "blocker" request holds the slot while tenant A
queues four requests and then tenant B two; the blocker is then cancelled and the six compete.
vLLM alone admits them first come, first served (a1 a2 a3 a4 b1 b2); with the patch the
tenants alternate (a1 b1 a2 b2 a3 a4).

The order is read from the scheduler itself: the recorder plugin of the scheduler's end-to-end
tests (plugins/vllm-ref-scheduler/tests/sched_recorder, pip-installed into a folder under the
cache, never into the venv) runs beside the policy in the engine core and writes each admission
to a file. Finish times seen by the client are not good enough: on a 2-core machine the API
server sometimes hands several short completions over at once, in any order.

Importing the scheduler's tests/ folder (its workload and its test-only recorder plugin) is
deliberate: the demo then shows exactly the order the e2e tests assert, with their retries. The
alternatives are worse: a second copy of the workload here would drift, and shipping the
recorder in the runtime wheel would put test tooling on every user's scheduler. The demo is a
repository tool, never installed, so reaching into a sibling folder costs a user nothing.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from vllm_ref_harness import cache_root, pip_install_target

PLUGIN = "ref_scheduler"
CHECK = "vllm_ref_scheduler:status"
ENV: dict[str, str] = {}
# One sequence slot makes the contention visible; the long context lets the blocker outlast the
# queueing of the workload on a fast machine.
SERVER_ARGS: list[str] = ["--max-num-seqs", "1", "--max-model-len", "2048"]
WORKLOAD = [("a1", "A"), ("a2", "A"), ("a3", "A"), ("a4", "A"), ("b1", "B"), ("b2", "B")]
TESTS = Path(__file__).resolve().parents[2] / "plugins" / "vllm-ref-scheduler" / "tests"
RECORD = cache_root() / "demo" / "sched-record.jsonl"


def prepare(env: dict[str, str], plugins: list[str]) -> None:
    """Install the recorder for the server's PYTHONPATH and name it among the plugins."""
    site = pip_install_target(cache_root() / "demo" / "sched-recorder-site", TESTS / "sched_recorder")
    RECORD.parent.mkdir(parents=True, exist_ok=True)
    RECORD.unlink(missing_ok=True)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), str(site)]))
    env["REF_SCHED_RECORD"] = str(RECORD)
    env["VLLM_SERVER_DEV_MODE"] = "1"  # vLLM's /pause and /resume hold the workload back (sched_workload.py)
    plugins.append("ref_sched_record")


def exercise(server, model: str) -> list[str]:
    import openai

    sys.path.insert(0, str(TESTS))
    from sched_workload import run_contended  # the scheduler e2e tests' workload, retries included

    server.record = RECORD
    order = " ".join(run_contended(server, WORKLOAD))
    lines = ["one sequence slot; tenant A queued a1-a4, then tenant B queued b1-b2",
             f"admission order: {order}   (vLLM's FCFS: a1 a2 a3 a4 b1 b2; fair share: a1 b1 a2 b2 a3 a4)"]
    client = server.client(max_retries=0, timeout=300)
    try:
        client.completions.create(model=model, prompt="the quick brown fox", max_tokens=2,
                                  extra_body={"vllm_xargs": {"ref_tenant": 42}})
        lines.append("ref_tenant=42 was accepted (validation not active)")
    except openai.BadRequestError as exc:
        lines.append(f"ref_tenant=42 -> HTTP {exc.status_code}: {exc.message[:110]}...")
    return lines
