"""A contended workload against a running server: the requests queue up in a known order while
none of them can run; returns the order in which the scheduler admitted them, read from the
server's own record (the sched_recorder test plugin).

Two ways to hold them back:
- vLLM's /pause?mode=keep and /resume (VLLM_SERVER_DEV_MODE=1, vLLM 0.32+): the scheduler
  keeps every request queued until resumed, however long the workload takes to arrive;
- elsewhere, one long "blocker" request in the only sequence slot (--max-num-seqs 1). On a
  2-core machine the API server sometimes cannot queue a request while a blocker streams,
  so this way needs retries (Precondition) and can still fail; the pause is used when offered.
Before each run a request of the "warm" tenant with a long prompt is admitted, which raises
the fair-share clock past every workload tenant: each run starts from equal virtual service.
"""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import requests

NAME_KEY = "ref_test_name"  # vllm_ref_sched_recorder.NAME_KEY
BLOCKER = "blocker"
# The blocker's prompt (token ids): long enough that its tenant is charged more than a whole
# workload, so that each blocker admission raises the fair-share clock past every workload
# tenant, and a retry starts from equal virtual service again (the policy banks no credit).
BLOCKER_PROMPT = [(i % 500) + 3 for i in range(256)]


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
        time.sleep(0.01)


class Record:
    """The server's record file (REF_SCHED_RECORD), from a given offset on."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.start = self.path.stat().st_size if self.path.exists() else 0

    def events(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        with open(self.path, "rb") as f:
            f.seek(self.start)
            data = f.read()
        return [json.loads(line) for line in data.split(b"\n")[:-1]]  # whole lines only

    def has(self, event: str, name: str) -> bool:
        return any(e["event"] == event and e["name"] == name for e in self.events())


def _headers(server: Any) -> dict[str, str]:
    return server.headers() if hasattr(server, "headers") else {}


def can_pause(server: Any) -> bool:
    """Whether the server offers vLLM's /pause and /resume (VLLM_SERVER_DEV_MODE=1, vLLM 0.32+)."""
    try:
        return requests.get(server.url + "/is_paused", headers=_headers(server), timeout=30).status_code == 200
    except requests.RequestException:
        return False


def run_paused(server: Any, workload: list[tuple[str, str | None]], *, tokens: int = 8) -> list[str]:
    """Admission order of `workload`, queued in order while vLLM's scheduler is paused."""
    record = Record(server.record)
    client = server.client(max_retries=0, timeout=300)
    client.completions.create(model=server.model, prompt=BLOCKER_PROMPT, max_tokens=1,
                              extra_body={"vllm_xargs": {"ref_tenant": "warm", NAME_KEY: BLOCKER}})
    post = lambda path: requests.post(server.url + path, headers=_headers(server), timeout=120)  # noqa: E731
    assert post("/pause?mode=keep").status_code == 200
    errors: list[BaseException] = []
    threads: list[threading.Thread] = []
    try:
        _queue_in_order(server, record, workload, tokens, errors, threads)
    finally:
        assert post("/resume").status_code == 200
        for t in threads:
            t.join(300)
    if errors:
        raise errors[0]
    names = [name for name, _ in workload]
    return [e["name"] for e in record.events() if e["event"] == "run" and e["name"] in names]


def _queue_in_order(server: Any, record: Record, workload: list[tuple[str, str | None]], tokens: int,
                    errors: list[BaseException], threads: list[threading.Thread]) -> None:
    """Send the workload's requests one at a time, each once the one before has reached the
    scheduler, so that arrival order is the listed order."""
    for name, tenant in workload:
        t = threading.Thread(target=_send, args=(server, name, tenant, tokens, errors))
        t.start()
        threads.append(t)
        wait_for(lambda name=name: record.has("add", name), f"{name} to reach the scheduler")


def _send(server: Any, name: str, tenant: str | None, tokens: int, errors: list[BaseException]) -> None:
    xargs: dict[str, Any] = {NAME_KEY: name}
    if tenant:
        xargs["ref_tenant"] = tenant
    try:
        server.client(max_retries=0, timeout=300).completions.create(
            model=server.model, prompt="the quick brown fox", max_tokens=tokens, temperature=0,
            extra_body={"ignore_eos": True, "vllm_xargs": xargs})
    except BaseException as exc:  # surfaced by the caller
        errors.append(exc)


def run_contended(server: Any, workload: list[tuple[str, str | None]], attempts: int = 5) -> list[str]:
    """The admission order of `workload`: paused where vLLM can pause, else behind a blocker
    (run_contended_once, repeated up to `attempts` times while its precondition fails)."""
    if can_pause(server):
        return run_paused(server, workload)
    for i in range(attempts):
        try:
            return run_contended_once(server, workload)
        except Precondition:
            if i == attempts - 1:
                raise
            time.sleep(2)  # let vLLM finish aborting the previous blocker
    raise AssertionError("unreachable")


def run_contended_once(server: Any, workload: list[tuple[str, str | None]], *, tokens: int = 8,
                       blocker_tokens: int = 2040 - len(BLOCKER_PROMPT)) -> list[str]:
    """Admission order of `workload` ((name, tenant) pairs), queued in that order behind a blocker.

    The server must run with --max-num-seqs 1, a max model length of 2048 and the recorder
    plugin writing to `server.record`. The blocker streams until the record shows that every
    request has reached the scheduler, then the stream is closed: vLLM aborts it and the queued
    requests compete for the freed slot. The order comes from the server's record, so it is
    exact; with one slot and equal requests it is also the finish order. Raises Precondition
    when the record shows a request admitted before all had arrived (the blocker ended early).
    """
    record = Record(server.record)
    errors: list[BaseException] = []
    blocker_client = server.client(max_retries=0, timeout=300)
    blocker = blocker_client.completions.create(
        model=server.model, prompt=BLOCKER_PROMPT, max_tokens=blocker_tokens, stream=True,
        extra_body={"ignore_eos": True, "vllm_xargs": {"ref_tenant": "warm", NAME_KEY: BLOCKER}})
    threads: list[threading.Thread] = []
    try:
        next(blocker)  # it holds the only sequence slot now
        _queue_in_order(server, record, workload, tokens, errors, threads)
    finally:
        blocker.close()  # vLLM aborts it; the slot goes to the policy's choice
        for t in threads:
            t.join(300)
    if errors:
        raise errors[0]
    names = [name for name, _ in workload]
    events = [e for e in record.events() if e["name"] in names]
    arrived = [e["name"] for e in events if e["event"] == "add"]
    admitted = [e["name"] for e in events if e["event"] == "run"]
    assert arrived == names, f"arrival order {arrived}, expected {names}"
    assert sorted(admitted) == sorted(names), f"admitted {admitted}, expected each of {names} once"
    first_run = next(i for i, e in enumerate(events) if e["event"] == "run")
    if first_run < len(names):  # all arrivals come first, or a request ran before all had queued
        raise Precondition(f"the blocker ended before the workload had queued: {events}")
    return admitted


def post(server: Any, path: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(server.url + path, json=body, headers=_headers(server), timeout=120)
