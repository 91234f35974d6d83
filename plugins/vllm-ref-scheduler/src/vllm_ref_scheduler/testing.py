"""Test tooling for vllm-ref-scheduler, imported by name: by this package's tests and
benchmark, by the endpoint plugin's tests and by the demo. Needs the `test` extra
(`pip install vllm-ref-scheduler[test]`); nothing at runtime imports it.

- A real vLLM v1 Scheduler on CPU without an engine (`make_scheduler`, `make_request`, `step`,
  `finish_order`): config from EngineArgs, a made-up KV cache, model outputs faked one token
  per scheduled request.
- The recorder: a server-side record of the scheduler's admission order. `recorder_site()`
  makes a folder for a server's PYTHONPATH that declares it as the general plugin
  `ref_sched_record` (no entry point of it is installed, so it runs only where a test puts that
  folder). In the engine core it adds one patch, `sched_record`, on vLLM's Scheduler through
  the patching framework, beside the fair-share patch on the same class (it wraps `add_request`
  and `schedule`, which fair_share leaves alone), and appends one JSON line per event to the
  file named by REF_SCHED_RECORD:

      {"event": "add", ...}  the request reached the scheduler (it arrived in the engine core)
      {"event": "run", ...}  the scheduler admitted it (it is in a step's scheduled_new_reqs)

  with "id" (vLLM's request id), "name" (vllm_xargs["ref_test_name"]) and "tenant"
  (vllm_xargs["ref_tenant"]). Without REF_SCHED_RECORD it does nothing. Like every patch of the
  framework, it is applied only where REF_PATCHES selects it (unset: all).
- A contended workload against a running server (`run_contended`): the requests queue up in a
  known order while none of them can run; it returns the order in which the scheduler admitted
  them, read from the recorder's file. Two ways to hold them back:
  - vLLM's /pause?mode=keep and /resume (VLLM_SERVER_DEV_MODE=1, vLLM 0.32+): the scheduler
    keeps every request queued until resumed, however long the workload takes to arrive;
  - elsewhere, one long "blocker" request in the only sequence slot (--max-num-seqs 1). On a
    2-core machine the API server sometimes cannot queue a request while a blocker streams,
    so this way needs retries (Precondition) and can still fail; the pause is used when offered.
  Before each run a request of the "warm" tenant with a long prompt is admitted, which raises
  the fair-share clock past every workload tenant: each run starts from equal virtual service.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import requests
import torch
from vllm.engine.arg_utils import EngineArgs
from vllm.sampling_params import SamplingParams
from vllm.utils.hashing import sha256
from vllm.v1.core.kv_cache_utils import get_request_block_hasher, init_none_hash
from vllm.v1.core.sched.scheduler import Scheduler
from vllm.v1.kv_cache_interface import FullAttentionSpec, KVCacheConfig, KVCacheGroupSpec
from vllm.v1.outputs import ModelRunnerOutput
from vllm.v1.request import Request
from vllm.v1.structured_output import StructuredOutputManager
from vllm_ref_common.patching import Patch, apply_selected, override

# --- a Scheduler without an engine --------------------------------------------------------------

BLOCK = 32
_ids = itertools.count()


def make_scheduler(model: str | Path, *, max_num_seqs: int = 1, num_blocks: int = 4096,
                   max_num_batched_tokens: int = 2048, policy: Literal["fcfs", "priority"] = "fcfs",
                   cls: type[Scheduler] = Scheduler) -> Scheduler:
    cfg = EngineArgs(model=str(model), max_num_seqs=max_num_seqs, max_model_len=512, enforce_eager=True,
                     block_size=BLOCK, max_num_batched_tokens=max_num_batched_tokens,
                     scheduling_policy=policy).create_engine_config()
    cfg.cache_config.num_gpu_blocks = num_blocks
    spec = FullAttentionSpec(block_size=BLOCK, num_kv_heads=1, head_size=64, dtype=torch.float32)
    kv = KVCacheConfig(num_blocks=num_blocks, kv_cache_tensors=[],
                       kv_cache_groups=[KVCacheGroupSpec(["model.layers.0.self_attn.attn"], spec)])
    return cls(vllm_config=cfg, kv_cache_config=kv,
               structured_output_manager=StructuredOutputManager(cfg),
               block_size=BLOCK, log_stats=False)


def make_request(tenant: str | None = None, *, prompt_len: int = 8, max_tokens: int = 4,
                 arrival: float | None = None, name: str | None = None, priority: int = 0,
                 hashed: bool = False) -> Request:
    """A request with prompt 1..prompt_len. `hashed`: with block hashes, as the engine makes
    them; prefix caching needs them once a request fills a block."""
    extra = {"ref_tenant": tenant} if tenant is not None else None
    params = SamplingParams(max_tokens=max_tokens, ignore_eos=True, extra_args=extra)
    rid = name or f"req{next(_ids)}"
    return Request(rid, list(range(1, prompt_len + 1)), params, None,
                   arrival_time=float(next(_ids)) if arrival is None else arrival, priority=priority,
                   block_hasher=_block_hasher() if hashed else None)


@functools.cache
def _block_hasher() -> Any:
    init_none_hash(sha256)
    return get_request_block_hasher(BLOCK, sha256)


def step(scheduler: Scheduler) -> tuple[Any, list[str]]:
    """One schedule() plus a fake model output (token 7 for each request); returns the
    SchedulerOutput and the ids of the requests that finished in this step."""
    out = scheduler.schedule()
    ids = list(out.num_scheduled_tokens)
    runner = ModelRunnerOutput(req_ids=ids, req_id_to_index={r: i for i, r in enumerate(ids)},
                               sampled_token_ids=[[7] for _ in ids])
    engine_outputs = scheduler.update_from_output(out, runner)
    finished = [o.request_id for eo in engine_outputs.values() for o in eo.outputs if o.finished]
    return out, finished


def finish_order(scheduler: Scheduler, max_steps: int = 10_000) -> list[str]:
    order: list[str] = []
    for _ in range(max_steps):
        if not scheduler.has_requests():
            return order
        order += step(scheduler)[1]
    raise AssertionError("scheduler did not drain")


# --- the recorder --------------------------------------------------------------------------------

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
    """The recorder's entry point (see recorder_site)."""
    if os.environ.get(RECORD_ENV):
        apply_selected([SchedRecord])


def recorder_site(site: str | Path) -> Path:
    """A folder for a server's PYTHONPATH in which the recorder is the general plugin
    `ref_sched_record` (and its patch `sched_record` a name REF_PATCHES accepts)."""
    from vllm_ref_harness import entry_point_site

    return entry_point_site(site, "vllm-ref-sched-recorder", {
        "vllm.general_plugins": {"ref_sched_record": f"{__name__}:register"},
        "vllm_ref.patches": {"sched_record": f"{__name__}:SchedRecord"},
    })


# --- a contended workload against a server ------------------------------------------------------

BLOCKER = "blocker"
# The blocker's prompt (token ids): long enough that its tenant is charged more than a whole
# workload, so that each blocker admission raises the fair-share clock past every workload
# tenant, and a retry starts from equal virtual service again (the policy banks no credit).
BLOCKER_PROMPT = [(i % 500) + 3 for i in range(256)]


class Precondition(AssertionError):
    """The workload did not get queued behind the blocker (a machine too fast or too slow)."""


def wait_for(cond: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
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
        wait_for(functools.partial(record.has, "add", name), f"{name} to reach the scheduler")


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
