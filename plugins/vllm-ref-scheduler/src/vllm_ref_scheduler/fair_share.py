"""Weighted fair share between tenants, as two patches on vLLM.

The policy (what an operator can rely on):
- A request's tenant is `vllm_xargs["ref_tenant"]` (SamplingParams.extra_args offline): 1-64
  characters from A-Z a-z 0-9 _ . -, starting with a letter or digit. Without it: "default".
- Tenant weights come from VLLM_REF_SCHEDULER_WEIGHTS, e.g. "gold=3,free=1"; unnamed tenants
  weigh 1.
- Each tenant has a virtual service V = (tokens vLLM scheduled for its requests) / weight,
  prefill and decode tokens alike. A request's pending prefill (its prompt; prompt and output
  after a preemption) is charged when it is admitted, so that admissions within one step see
  each other; every other token is charged after the step that scheduled it. Prefix-cache hits
  are not discounted.
- Whenever vLLM's scheduler takes the next waiting request, it gets the head of the tenant with
  the smallest V among tenants with waiting requests (equal V: the head that arrived first;
  equal arrival times too: the tenant name that sorts first). V is kept in exact integer
  arithmetic (weights are read as exact fractions), so equal shares compare equal.
  Inside a tenant vLLM's own order holds: FCFS, or priority with --scheduling-policy priority.
- Idle tenants bank no credit: when a tenant's queue goes from empty to non-empty, its V is
  raised to the V at which the last request was admitted.
- The policy orders admission only: it never preempts running requests. A request vLLM
  preempts for memory goes back to the front of its tenant's queue; requests in vLLM's separate
  queue of KV-holding requests are drained first, as vLLM does.

Over a busy period each tenant receives tokens in proportion to its weight; with one tenant
(or no `ref_tenant` anywhere) the order is exactly vLLM's own.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from fractions import Fraction
from typing import Any

from vllm.v1.core.sched.request_queue import RequestQueue, create_request_queue

from .patching import Patch, override

TENANT_KEY = "ref_tenant"
WEIGHTS_ENV = "VLLM_REF_SCHEDULER_WEIGHTS"
DEFAULT_TENANT = "default"
_TENANT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_ATTR = "_ref_tenant"  # cached on each vLLM Request
_UNKNOWN = ""  # never a valid tenant name: requests the engine no longer knows


def tenant_error(extra_args: dict[str, Any] | None) -> str | None:
    """Why the request's tenant value is unacceptable, or None."""
    if not extra_args or TENANT_KEY not in extra_args:
        return None
    value = extra_args[TENANT_KEY]
    if isinstance(value, str) and _TENANT_RE.fullmatch(value):
        return None
    return (f"ref_scheduler: vllm_xargs[{TENANT_KEY!r}] must be a string of 1-64 characters from "
            f"A-Z a-z 0-9 _ . - starting with a letter or digit; got {value!r} ({type(value).__name__})")


def parse_weights(text: str | None) -> dict[str, Fraction]:
    """"gold=3,free=0.5" -> {"gold": 3, "free": 1/2} as exact fractions; bad input raises
    ValueError."""
    weights: dict[str, Fraction] = {}
    for item in filter(None, (s.strip() for s in (text or "").split(","))):
        tenant, sep, raw = item.partition("=")
        tenant = tenant.strip()
        try:
            weight = Fraction(raw.strip()) if sep else Fraction(0)
        except (ValueError, ZeroDivisionError):  # also "inf" and "nan"
            weight = Fraction(0)
        if not _TENANT_RE.fullmatch(tenant) or not weight > 0:
            raise ValueError(f"ref_scheduler: {WEIGHTS_ENV} must be a comma list of tenant=weight with "
                             f"tenant names like vllm_xargs['{TENANT_KEY}'] and positive finite weights "
                             f"(e.g. 'gold=3,free=1'); bad item {item!r}")
        weights[tenant] = weight
    return weights


def tenant_of(request: Any) -> str:
    """The request's tenant (cached on it). Invalid values, refused by the front end, fall back
    to the default tenant here rather than failing inside the engine core."""
    tenant = getattr(request, _ATTR, None)
    if tenant is None:
        params = getattr(request, "sampling_params", None)
        extra = getattr(params, "extra_args", None) or {}
        tenant = extra.get(TENANT_KEY, DEFAULT_TENANT)
        if not isinstance(tenant, str) or not _TENANT_RE.fullmatch(tenant):
            tenant = DEFAULT_TENANT
        setattr(request, _ATTR, tenant)
    return tenant


def _head(q: RequestQueue) -> Any:
    # vLLM's FCFS queue is a deque: indexing it skips three Python-level calls of peek_request().
    return q[0] if isinstance(q, deque) else q.peek_request()


def _token_units(weights: dict[str, Fraction | float]) -> tuple[int, dict[str, int]]:
    """Virtual time in integers: K units per token at weight 1, K / w per token at weight w,
    with K the least common multiple of the weights' numerators, so that every unit is whole."""
    exact = {t: Fraction(w) for t, w in weights.items()}
    k = math.lcm(1, *(w.numerator for w in exact.values()))
    return k, {t: k // w.numerator * w.denominator for t, w in exact.items()}


def _empty(q: RequestQueue) -> bool:
    # The FCFS queue's __bool__ and __len__ are two Python-level calls; deque's own length is C.
    return not deque.__len__(q) if isinstance(q, deque) else not q


class FairShareQueue(RequestQueue):
    """vLLM's waiting queue, split per tenant; see the module docstring for the order."""

    def __init__(self, policy: Any, weights: dict[str, Fraction | float] | None = None):
        self.policy = policy
        self.weights = dict(weights or {})
        self._k, self._unit = _token_units(self.weights)
        self._v: dict[str, int] = {}  # tenant -> virtual service, K units per token at weight 1
        self._clock = 0  # the V at which the last request was admitted, same units
        self._queues: dict[str, RequestQueue] = {}  # tenant -> one of vLLM's own queues
        self._active: dict[str, RequestQueue] = {}  # the non-empty ones
        self._arrival: dict[str, float] = {}  # tenant -> arrival time of its head, when active
        self._len = 0
        self._best: str | None = None  # vLLM peeks, then pops the same request: cached choice
        self._admitted: dict[str, str] = {}  # request id -> tenant, for charging
        self._prepaid: dict[str, int] = {}  # request id -> tokens charged at admission, unscheduled
        self._steps = 0
        self._last_ids: set[str] = set()  # the requests the last charged step scheduled ...
        self._last_count: Counter[str] = Counter()  # ... and how many of those each tenant has

    @property
    def vtime(self) -> dict[str, float]:
        """Each known tenant's virtual service V, in tokens per unit of weight."""
        return {t: v / self._k for t, v in self._v.items()}

    @property
    def clock(self) -> float:
        """The V at which the last request was admitted (where an idle tenant starts)."""
        return self._clock / self._k

    # -- the policy --
    def _pick(self) -> str:
        best = self._best
        if best is None:
            active = self._active
            if not active:
                raise IndexError("peek from an empty fair-share queue")
            # (V, head arrival, name), compared in C: exact V, so ties are real ties.
            best = min(zip(map(self._v.__getitem__, active), map(self._arrival.__getitem__, active),
                           active, strict=True))[2]
            self._best = best
        return best

    def _add_vtime(self, tenant: str, tokens: int) -> None:
        self._v[tenant] = self._v.get(tenant, self._clock) + tokens * self._unit.get(tenant, self._k)

    def charge(self, requests: dict[str, Any], num_scheduled_tokens: dict[str, int]) -> None:
        """Add one step's scheduled tokens to each tenant's virtual service, minus what the
        requests prepaid at admission."""
        admitted = self._admitted
        # One token per scheduled request, counted per tenant and carried from one step to the
        # next: most scheduled requests are the same as in the step before (the set
        # difference runs in C).
        ids, count = self._last_ids, self._last_count
        changed = num_scheduled_tokens.keys() ^ ids
        for req_id in changed:
            if req_id in ids:  # not scheduled this time
                count[admitted.get(req_id, _UNKNOWN)] -= 1
                continue
            tenant = admitted.get(req_id)
            if tenant is None:  # admitted some other way (vLLM's KV-holding queue)
                tenant = admitted[req_id] = tenant_of(requests[req_id]) if req_id in requests else _UNKNOWN
            count[tenant] += 1
        ids ^= changed
        # The rest: tokens beyond the first (prefill chunks, speculative tokens), less what the
        # request prepaid. Usually only the requests admitted in this step have either.
        delta: dict[str, int] = {}
        extra = sum(num_scheduled_tokens.values()) - len(num_scheduled_tokens)
        prepaid = self._prepaid
        seen = []
        for req_id in list(prepaid):
            n = num_scheduled_tokens.get(req_id)
            if n is not None:
                tenant = admitted[req_id]
                used = min(prepaid[req_id], n)
                delta[tenant] = delta.get(tenant, 0) + n - 1 - used
                extra -= n - 1
                seen.append(req_id)
                if prepaid[req_id] > used:
                    prepaid[req_id] -= used
                    continue
            elif req_id in requests:
                continue
            del prepaid[req_id]
        if extra:
            seen_ids = set(seen)
            for req_id, n in num_scheduled_tokens.items():
                if n != 1 and req_id not in seen_ids:
                    tenant = admitted.get(req_id, _UNKNOWN)
                    delta[tenant] = delta.get(tenant, 0) + n - 1
        v, unit, k, clock = self._v, self._unit, self._k, self._clock
        for tenant, n in count.items():
            if delta:
                n += delta.get(tenant, 0)
            if n and tenant != _UNKNOWN:
                v[tenant] = v.get(tenant, clock) + n * unit.get(tenant, k)
        self._best = None
        self._steps += 1
        if self._steps % 1024 == 0:  # forget finished requests and tenants with none scheduled
            for req_id in [r for r in admitted if r not in requests and r not in ids]:
                del admitted[req_id]
            for tenant in [t for t, n in count.items() if not n]:
                del count[tenant]

    def _enqueue(self, request: Any, front: bool) -> None:
        tenant = tenant_of(request)
        q = self._active.get(tenant)
        if q is None:
            q = self._queues.get(tenant)
            if q is None:
                q = self._queues[tenant] = create_request_queue(self.policy)
            self._active[tenant] = q
            # Idle tenants bank no credit.
            self._v[tenant] = max(self._v.get(tenant, 0), self._clock)
        if front:
            q.prepend_request(request)
        else:
            q.add_request(request)
        self._len += 1
        self._arrival[tenant] = _head(q).arrival_time
        self._best = None

    def _dequeued(self, tenant: str, q: RequestQueue) -> None:
        if _empty(q):
            del self._active[tenant]
        else:
            self._arrival[tenant] = _head(q).arrival_time
        self._best = None

    # -- RequestQueue --
    def add_request(self, request: Any) -> None:
        self._enqueue(request, front=False)

    def peek_request(self) -> Any:
        return _head(self._active[self._pick()])

    def pop_request(self) -> Any:
        # vLLM pops a request when it admits it into this step (or skips it: then it comes back
        # through prepend_request). Its pending prefill is charged now, so that the next
        # admission in the same step already sees this one.
        tenant = self._pick()
        q = self._active[tenant]
        request = q.pop_request()
        self._len -= 1
        if _empty(q):  # _dequeued(), inlined: this runs for every admission
            del self._active[tenant]
        else:
            self._arrival[tenant] = _head(q).arrival_time
        self._best = None
        v = self._v[tenant]
        if v > self._clock:
            self._clock = v
        req_id = request.request_id
        self._admitted[req_id] = tenant
        pending = request.num_tokens - request.num_computed_tokens
        if pending > 0:
            self._prepaid[req_id] = pending
            self._v[tenant] = v + pending * self._unit.get(tenant, self._k)
        if len(self._v) > 2 * len(self._active) + 64:
            self._forget_idle()
        return request

    def _forget_idle(self) -> None:
        # An idle tenant at or below the clock would be raised to the clock anyway: drop it, so
        # that many short-lived tenant names do not grow the state without bound.
        for tenant in [t for t, v in self._v.items() if v <= self._clock and t not in self._active]:
            del self._v[tenant]
            self._queues.pop(tenant, None)

    def prepend_request(self, request: Any) -> None:
        # Back in the queue: skipped for this step, or preempted. Refund what it prepaid and did
        # not use; it pays again when admitted again.
        prepaid = self._prepaid.pop(request.request_id, 0)
        if prepaid:
            self._add_vtime(tenant_of(request), -prepaid)
        self._enqueue(request, front=True)

    def prepend_requests(self, requests: Iterable[Any]) -> None:
        # Same order as vLLM's queues: each one goes to the front of its tenant's queue in turn.
        for request in requests:
            self.prepend_request(request)

    def remove_request(self, request: Any) -> None:
        tenant = tenant_of(request)
        q = self._queues[tenant]
        q.remove_request(request)
        self._len -= 1
        self._dequeued(tenant, q)

    def remove_requests(self, requests: Iterable[Any]) -> None:
        by_tenant: dict[str, list[Any]] = {}
        for request in requests:
            by_tenant.setdefault(tenant_of(request), []).append(request)
        for tenant, group in by_tenant.items():
            q = self._active.get(tenant)
            if q is not None:
                q.remove_requests(group)
                self._dequeued(tenant, q)
        self._len = sum(len(q) for q in self._active.values())
        self._best = None

    def __bool__(self) -> bool:
        return self._len > 0

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[Any]:
        """Tenant by tenant, each in vLLM's order (not the admission order across tenants)."""
        for q in list(self._active.values()):
            yield from q


class FairShareScheduler(Patch):
    """Engine core only: the scheduler's waiting queue becomes a FairShareQueue, and every
    step's scheduled tokens are charged to their tenants."""

    name = "fair_share"
    target = "vllm.v1.core.sched.scheduler:Scheduler"
    min_vllm, max_vllm = "0.28", "0.34"
    roles = ("engine_core",)

    @override
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        FairShareScheduler.original("__init__")(self, *args, **kwargs)
        queue = FairShareQueue(self.policy, parse_weights(os.environ.get(WEIGHTS_ENV)))
        for request in self.waiting:  # empty in vLLM today; kept so nothing could be lost
            queue.add_request(request)
        self.waiting = queue

    @override
    def _update_after_schedule(self, scheduler_output: Any) -> None:
        FairShareScheduler.original("_update_after_schedule")(self, scheduler_output)
        if isinstance(self.waiting, FairShareQueue):
            self.waiting.charge(self.requests, scheduler_output.num_scheduled_tokens)


try:  # a 4xx in vLLM's API server; older vLLMs map ValueError to 400 too
    from vllm.exceptions import VLLMValidationError as _BadRequest
except ImportError:  # pragma: no cover - depends on the vLLM version
    _BadRequest = ValueError  # type: ignore[assignment,misc]


class TenantValidation(Patch):
    """Front end: refuse a bad `ref_tenant` where SamplingParams are validated, so that the API
    server answers 400 for that request alone before it reaches the engine."""

    name = "fair_share_validation"
    target = "vllm.sampling_params:SamplingParams"
    min_vllm, max_vllm = "0.28", "0.34"
    roles = ("front_end",)

    @override
    def _verify_args(self) -> None:
        TenantValidation.original("_verify_args")(self)
        why = tenant_error(self.extra_args)
        if why:
            raise _BadRequest(why)


PATCHES = (FairShareScheduler, TenantValidation)
