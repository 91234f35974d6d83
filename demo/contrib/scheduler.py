"""ref_scheduler in the demo: weighted fair share between tenants, visible in an admission order.

The server gets one sequence slot (--max-num-seqs 1; the other plugins' exercises send one
request at a time, so they only queue). A long "blocker" request holds the slot while tenant A
queues four requests and then tenant B two; the blocker is then cancelled and the six compete.
vLLM alone admits them first come, first served (a1 a2 a3 a4 b1 b2); with the patch the
tenants alternate (a1 b1 a2 b2 a3 a4).

The order is read from the scheduler itself: the recorder of the scheduler's test tooling
(`vllm_ref_scheduler.testing`, declared as a plugin in a folder under the cache, never in the
venv) runs beside the policy in the engine core and writes each admission to a file. Finish
times seen by the client are not good enough: on a 2-core machine the API server sometimes
hands several short completions over at once, in any order. The workload is the one the e2e
tests assert on, with their retries (`run_contended`).
"""

from __future__ import annotations

import os

from vllm_ref_harness import cache_root

PLUGIN = "ref_scheduler"
CHECK = "vllm_ref_scheduler:status"
ENV: dict[str, str] = {}
# One sequence slot makes the contention visible; the long context lets the blocker outlast the
# queueing of the workload on a fast machine.
SERVER_ARGS: list[str] = ["--max-num-seqs", "1", "--max-model-len", "2048"]
WORKLOAD = [("a1", "A"), ("a2", "A"), ("a3", "A"), ("a4", "A"), ("b1", "B"), ("b2", "B")]
RECORD = cache_root() / "demo" / "sched-record.jsonl"


def prepare(env: dict[str, str], plugins: list[str]) -> None:
    """Declare the recorder for the server's PYTHONPATH and name it among the plugins."""
    from vllm_ref_scheduler.testing import recorder_site

    site = recorder_site(cache_root() / "demo" / "sched-recorder-site")
    RECORD.parent.mkdir(parents=True, exist_ok=True)
    RECORD.unlink(missing_ok=True)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), str(site)]))
    env["REF_SCHED_RECORD"] = str(RECORD)
    env["VLLM_SERVER_DEV_MODE"] = "1"  # vLLM's /pause and /resume hold the workload back (run_contended)
    plugins.append("ref_sched_record")


def exercise(server, model: str) -> list[str]:
    import openai
    from vllm_ref_scheduler.testing import run_contended

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
