"""A contended workload against a running server: one long request occupies the only
sequence slot while the others queue up in a known order; returns their finish order."""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import requests


class Precondition(AssertionError):
    """The workload did not get queued behind the blocker (a machine too fast or too slow)."""


def gauge(server: Any, name: str) -> float:
    m = re.search(rf"^vllm:{name}\{{[^}}]*\}} (\S+)$", server.metrics(), re.M)
    return float(m.group(1)) if m else 0.0


def wait_for(cond, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise Precondition(f"timed out waiting for {what}")
        time.sleep(0.02)


def run_contended(server: Any, workload: list[tuple[str, str | None]], attempts: int = 3) -> list[str]:
    """run_contended_once, repeated (up to `attempts`) while its precondition fails."""
    for i in range(attempts):
        try:
            return run_contended_once(server, workload)
        except Precondition:
            if i == attempts - 1:
                raise
            time.sleep(2)  # let the previous attempt's requests drain
    raise AssertionError("unreachable")


def run_contended_once(server: Any, workload: list[tuple[str, str | None]], *, tokens: int = 48) -> list[str]:
    """Finish order of `workload` ((name, tenant) pairs), queued in that order behind a blocker.

    The server must run with --max-num-seqs 1 and a max model length of about 2048. The blocker
    streams until every request has queued, then the stream is closed: vLLM aborts it and the
    queued requests compete for the freed slot. Each request decodes `tokens` tokens, so that
    finishes lie far enough apart for the client to see them in order.
    """
    # The blocker gets a client (a connection pool) of its own: closing its stream must not hold
    # up the other responses, or they arrive in a bunch and their order is lost.
    client = server.client(max_retries=0, timeout=300)
    finished: list[tuple[float, str]] = []
    errors: list[BaseException] = []

    def send(name: str, tenant: str | None) -> None:
        body: dict[str, Any] = {"ignore_eos": True}
        if tenant:
            body["vllm_xargs"] = {"ref_tenant": tenant}
        try:
            client.completions.create(model=server.model, prompt="the quick brown fox", max_tokens=tokens,
                                      temperature=0, extra_body=body)
            finished.append((time.monotonic(), name))
        except BaseException as exc:  # surfaced by the caller
            errors.append(exc)

    blocker_client = server.client(max_retries=0, timeout=300)
    blocker = blocker_client.completions.create(
        model=server.model, prompt="the quick brown fox", max_tokens=2000, stream=True,
        extra_body={"ignore_eos": True, "vllm_xargs": {"ref_tenant": "warm"}})
    next(blocker)  # it holds the only sequence slot now
    threads = []
    for i, (name, tenant) in enumerate(workload, 1):
        t = threading.Thread(target=send, args=(name, tenant))
        t.start()
        threads.append(t)
        # One at a time, so that arrival order is the listed order.
        wait_for(lambda i=i: gauge(server, "num_requests_waiting") >= i, f"{name} to queue")
    if finished or gauge(server, "num_requests_running") != 1:
        raise Precondition("the blocker stopped before the workload had queued")
    blocker.close()  # vLLM aborts it; the slot goes to the policy's choice
    for t in threads:
        t.join(300)
    if errors:
        raise errors[0]
    return [name for _, name in sorted(finished)]


def post(server: Any, path: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(server.url + path, json=body, timeout=120)
