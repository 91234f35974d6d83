"""ref_scheduler in the demo: weighted fair share between tenants, visible in a finish order.

The server gets one sequence slot (--max-num-seqs 1; the other plugins' exercises send one
request at a time, so they only queue). A long "blocker" request holds the slot while tenant A
queues four requests and then tenant B two; the blocker is then cancelled and the six compete.
vLLM alone finishes them first come, first served (a1 a2 a3 a4 b1 b2); with the patch the
tenants alternate (a1 b1 a2 b2 a3 a4).
"""

from __future__ import annotations

import re
import sys
import threading
import time

PLUGIN = "ref_scheduler"
CHECK = "contrib.scheduler:effect"
ENV: dict[str, str] = {}
# One sequence slot makes the contention visible; the long context lets the blocker outlast the
# queueing of the workload on a fast machine.
SERVER_ARGS: list[str] = ["--max-num-seqs", "1", "--max-model-len", "2048"]
PROMPT = "the quick brown fox"
WORKLOAD = [("a1", "A"), ("a2", "A"), ("a3", "A"), ("a4", "A"), ("b1", "B"), ("b2", "B")]


def effect() -> bool:
    """True where vLLM's Scheduler runs the fair-share methods (the engine core only)."""
    sched = sys.modules.get("vllm.v1.core.sched.scheduler")
    ours = sys.modules.get("vllm_ref_scheduler.fair_share")
    if sched is None or ours is None:
        return False
    method = "_update_after_schedule"
    return vars(sched.Scheduler).get(method) is vars(ours.FairShareScheduler).get(method)


def _gauge(server, name: str) -> float:
    m = re.search(rf"^vllm:{name}\{{[^}}]*\}} (\S+)$", server.metrics(), re.M)
    return float(m.group(1)) if m else 0.0


def _wait(cond, timeout: float = 12.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError("the contended workload did not queue in time")
        # Not faster: every poll is a /metrics scrape, which the API server renders on the same
        # event loop that takes in the requests being queued.
        time.sleep(0.2)


def _contended(server, model: str) -> str:
    """Queue the workload behind a long blocker, release the slot, return the finish order."""
    client = server.client(max_retries=0, timeout=300)
    finished: list[tuple[float, str]] = []

    def send(name: str, tenant: str) -> None:
        client.completions.create(model=model, prompt=PROMPT, max_tokens=32, temperature=0,
                                  extra_body={"ignore_eos": True, "vllm_xargs": {"ref_tenant": tenant}})
        finished.append((time.monotonic(), name))

    blocker = client.completions.create(model=model, prompt=PROMPT, max_tokens=2000, stream=True,
                                        extra_body={"ignore_eos": True})
    next(iter(blocker))
    threads = []
    try:
        for i, (name, tenant) in enumerate(WORKLOAD, 1):
            threads.append(threading.Thread(target=send, args=(name, tenant)))
            threads[-1].start()
            try:
                _wait(lambda i=i: _gauge(server, "num_requests_waiting") >= i)
            except TimeoutError as exc:
                raise TimeoutError(f"{exc}: {i} sent, vllm:num_requests_waiting="
                                   f"{_gauge(server, 'num_requests_waiting')}, vllm:num_requests_running="
                                   f"{_gauge(server, 'num_requests_running')}") from None
    finally:
        blocker.close()  # vLLM aborts it; the queued requests compete for the slot
        for t in threads:
            t.join(300)
    return " ".join(name for _, name in sorted(finished))


def exercise(server, model: str) -> list[str]:
    import openai

    client = server.client(max_retries=0, timeout=300)
    # The blocker (2000 tokens, the context's limit) must still hold the slot when the last
    # request queues. On a quiet machine it lasts only a few seconds, and queueing through the
    # API server is sometimes slower than that: then the attempt is repeated.
    attempts = 5
    for attempt in range(attempts):
        try:
            order = _contended(server, model)
            break
        except TimeoutError:
            if attempt == attempts - 1:
                raise
    lines = ["one sequence slot; tenant A queued a1-a4, then tenant B queued b1-b2",
             f"finish order: {order}   (vLLM's FCFS: a1 a2 a3 a4 b1 b2; fair share: a1 b1 a2 b2 a3 a4)"]
    try:
        client.completions.create(model=model, prompt=PROMPT, max_tokens=2,
                                  extra_body={"vllm_xargs": {"ref_tenant": 42}})
        lines.append("ref_tenant=42 was accepted (validation not active)")
    except openai.BadRequestError as exc:
        lines.append(f"ref_tenant=42 -> HTTP {exc.status_code}: {exc.message[:110]}...")
    return lines
