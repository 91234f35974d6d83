"""Weighted fair share between tenants, as two patches on vLLM.

The policy (what an operator can rely on):
- A request's tenant is `vllm_xargs["ref_tenant"]` (SamplingParams.extra_args offline): 1-64
  characters from A-Z a-z 0-9 _ . -, starting with a letter or digit. Without it: "default".
- Tenant weights come from REF_SCHEDULER_WEIGHTS, e.g. "gold=3,free=1"; unnamed tenants
  weigh 1. Every weight, from the setting or a live change, obeys check_weight: 0.001 to 10^6.
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
- The state stays bounded: once more than 64 tenants (and twice as many as at the last clean-up)
  are known, the tenants with nothing waiting and nothing scheduled are forgotten; one that
  comes back starts like a new tenant, at the clock.
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
from collections.abc import Iterable, Iterator, Mapping
from fractions import Fraction
from heapq import heapify, heappop, heappush, heapreplace
from typing import Any

from vllm.v1.core.sched.request_queue import RequestQueue, create_request_queue
from vllm_ref_common.patching import Patch, override

from . import WEIGHTS_ENV

TENANT_KEY = "ref_tenant"
DEFAULT_TENANT = "default"
_TENANT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_ATTR = "_ref_tenant"  # cached on each vLLM Request
_UNKNOWN = ""  # never a valid tenant name: requests the engine no longer knows


# Bounds of a weight, and why. A ratio of 10^9 between the lightest and the heaviest tenant is
# beyond any share anyone means; inside it the integer virtual times stay small and the float
# report (V / unit) cannot overflow or round to 0. Six decimal places (a denominator of at most
# 10^6) are more precision than a share needs, and keep the integer unit (the lcm of the
# weights' numerators) small. 32 characters per weight and a 3-digit exponent keep the parse
# itself cheap ("1e999999999" would be a 10^9-digit integer), and 256 weighted tenants keep a
# request body or a setting small.
WEIGHT_MIN = Fraction(1, 1000)
WEIGHT_MAX = Fraction(10**6)
WEIGHT_MAX_DENOMINATOR = 10**6
WEIGHT_MAX_CHARS = 32
MAX_WEIGHTED_TENANTS = 256
WEIGHT_RULE = (f"tenant names like vllm_xargs['{TENANT_KEY}'] (1-64 characters from A-Z a-z 0-9 _ . -, starting "
               f"with a letter or digit), each named once, and weights that are decimal numbers or fractions from "
               f"0.001 to 1000000 with at most 6 decimal places (a denominator up to 1000000), written in at most "
               f"{WEIGHT_MAX_CHARS} characters")
WEIGHTS_ACCEPTED = (f"a comma list of at most {MAX_WEIGHTED_TENANTS} tenant=weight items with {WEIGHT_RULE} "
                    f"(e.g. 'gold=3,free=0.5,bronze=1/3')")
_NUMBER_RE = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?|[0-9]+/[0-9]+", re.ASCII)


def shown(value: Any, limit: int = 80) -> str:
    """repr(value), cut to `limit` characters: an error message echoes what it refuses, never a
    megabyte of it (and a deeply nested value's repr cannot recurse without bound)."""
    try:
        text = repr(value)
    except (RecursionError, ValueError):  # ValueError: an int too long for repr
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else f"{text[:limit - 12]}...({len(text)} chars)"


def tenant_error(extra_args: dict[str, Any] | None) -> str | None:
    """Why the request's tenant value is unacceptable, or None."""
    if not extra_args or TENANT_KEY not in extra_args:
        return None
    value = extra_args[TENANT_KEY]
    if isinstance(value, str) and _TENANT_RE.fullmatch(value):
        return None
    return (f"ref_scheduler: vllm_xargs[{TENANT_KEY!r}] must be a string of 1-64 characters from "
            f"A-Z a-z 0-9 _ . - starting with a letter or digit; got {shown(value)} ({type(value).__name__})")


def check_weight(tenant: Any, value: Any, source: str = WEIGHTS_ENV) -> Fraction:
    """The one rule for a tenant's weight, whatever carried it (REF_SCHEDULER_WEIGHTS, the
    endpoint's PUT, a caller of set_weights): the weight as an exact fraction, or ValueError
    naming the plugin, `source`, the item and the accepted range."""
    weight = None
    if isinstance(tenant, str) and _TENANT_RE.fullmatch(tenant):
        if isinstance(value, str):
            text = value.strip()
            if len(text) <= WEIGHT_MAX_CHARS and _NUMBER_RE.fullmatch(text):
                try:
                    weight = Fraction(text)
                except ZeroDivisionError:
                    weight = None
        elif isinstance(value, float):  # as written (0.1 is 1/10, not the binary double); nan, inf fail
            text = repr(value)
            weight = Fraction(text) if _NUMBER_RE.fullmatch(text) else None
        elif isinstance(value, (int, Fraction)) and not isinstance(value, bool):
            weight = Fraction(value)
    if weight is None or not WEIGHT_MIN <= weight <= WEIGHT_MAX or weight.denominator > WEIGHT_MAX_DENOMINATOR:
        raise ValueError(f"ref_scheduler: {source}: bad item {shown(tenant)}: {shown(value)}; accepted: "
                         f"{WEIGHT_RULE}")
    return weight


def parse_weights(text: str | None, source: str = WEIGHTS_ENV) -> dict[str, Fraction]:
    """"gold=3,free=0.5" -> {"gold": 3, "free": 1/2} as exact fractions; bad input raises
    ValueError naming the plugin, `source` (the setting, or the request's field) and the
    accepted form. REF_SCHEDULER_WEIGHTS and the endpoint's PUT are both read here."""
    def bad(why: str) -> ValueError:
        return ValueError(f"ref_scheduler: {source} must be {WEIGHTS_ACCEPTED}; {why}")

    if text is not None and not isinstance(text, str):
        raise bad(f"got {type(text).__name__}")
    weights: dict[str, Fraction] = {}
    items = [s.strip() for s in (text or "").split(",", MAX_WEIGHTED_TENANTS + 1)]
    items = [s for s in items if s]
    if len(items) > MAX_WEIGHTED_TENANTS:
        raise bad(f"it names more than {MAX_WEIGHTED_TENANTS} tenants")
    for item in items:
        tenant, sep, raw = item.partition("=")
        tenant = tenant.strip()
        if tenant in weights:
            raise bad(f"tenant {shown(tenant)} is named twice")
        try:
            weights[tenant] = check_weight(tenant, raw if sep else None, source)
        except ValueError:
            raise bad(f"bad item {shown(item)}") from None
    return weights


def check_weights(weights: Any, source: str = "weights") -> dict[str, Fraction]:
    """Weights given as a mapping (tenant -> number or fraction text), checked by the same rule
    as parse_weights."""
    if not isinstance(weights, dict):
        raise ValueError(f"ref_scheduler: {source} must be a mapping of tenant to weight, got "
                         f"{type(weights).__name__}; accepted: {WEIGHT_RULE}")
    if len(weights) > MAX_WEIGHTED_TENANTS:
        raise ValueError(f"ref_scheduler: {source} names more than {MAX_WEIGHTED_TENANTS} tenants; accepted: "
                         f"at most {MAX_WEIGHTED_TENANTS}, with {WEIGHT_RULE}")
    return {t: check_weight(t, w, source) for t, w in weights.items()}


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


def _token_units(weights: Mapping[str, Fraction | float]) -> tuple[int, dict[str, int]]:
    """Virtual time in integers: K units per token at weight 1, K / w per token at weight w,
    with K the least common multiple of the weights' numerators, so that every unit is whole."""
    exact = {t: Fraction(w) for t, w in weights.items()}
    k = math.lcm(1, *(w.numerator for w in exact.values()))
    return k, {t: k // w.numerator * w.denominator for t, w in exact.items()}


class FairShareQueue(RequestQueue):
    """vLLM's waiting queue, split per tenant; see the module docstring for the order."""

    def __init__(self, policy: Any, weights: Mapping[str, Fraction | float] | None = None):
        self.policy = policy
        self.weights = check_weights(dict(weights or {}))
        self._k, self._unit = _token_units(self.weights)
        self._v: dict[str, int] = {}  # tenant -> virtual service, K units per token at weight 1
        self._clock = 0  # the V at which the last request was admitted, same units
        self._queues: dict[str, RequestQueue] = {}  # tenant -> one of vLLM's own queues
        self._active: dict[str, RequestQueue] = {}  # the non-empty ones
        # The order: (V, head arrival, name) of each active tenant, in a dict and in a heap.
        # The heap may hold outdated entries too (an entry counts only while the dict has it):
        # they are dropped when they reach the top. After a step has charged its tokens every
        # V has moved: `_stale` until the next pick rebuilds both.
        self._key: dict[str, tuple[int, float, str]] = {}
        self._heap: list[tuple[int, float, str]] = []
        self._stale = False
        self._len = 0
        self._prepaid: dict[str, int] = {}  # request id -> tokens charged at admission, unscheduled
        self._admitted: dict[str, str] = {}  # request id -> tenant, popped since the last step
        self._steps = 0
        self._last: dict[str, str] = {}  # the requests the last charged step scheduled: tenant ...
        self._last_count: Counter[str] = Counter()  # ... and how many of those each tenant has
        self._forget_at = 64  # known tenants beyond which the idle ones are forgotten

    @property
    def vtime(self) -> dict[str, float]:
        """Each known tenant's virtual service V, in tokens per unit of weight."""
        return {t: v / self._k for t, v in self._v.items()}

    @property
    def clock(self) -> float:
        """The V at which the last request was admitted (where an idle tenant starts)."""
        return self._clock / self._k

    def snapshot(self) -> dict[str, Any]:
        """The policy's state, for operators: {"clock": V of the last admission, "weights": the
        configured ones, "tenants": {name: {"weight", "virtual_service", "waiting"}}} (V in
        tokens per unit of weight; unnamed tenants weigh 1)."""
        return self._report(self._v, self._clock, self._k, self.weights)

    def _report(self, vs: dict[str, int], clock: int, k: int, weights: dict[str, Fraction]) -> dict[str, Any]:
        # The weights' bounds keep every value here a finite float (check_weight).
        tenants = {t: {"weight": float(weights.get(t, 1)), "virtual_service": v / k,
                       "waiting": len(self._active[t]) if t in self._active else 0}
                   for t, v in sorted(vs.items())}
        return {"clock": clock / k, "weights": {t: float(w) for t, w in sorted(weights.items())},
                "tenants": tenants}

    # Above this size the common unit of the old and the new weights is not kept: a client that
    # PUTs ever new numerators would otherwise grow every virtual time without bound.
    _MAX_UNIT_BITS = 256

    def set_weights(self, weights: Mapping[str, Fraction | float]) -> dict[str, Any]:
        """Use `weights` from the next admission on, and answer the new snapshot(): one step
        that happens whole or not at all (a refused or failing change leaves every field as it
        was). What each tenant has used so far keeps its meaning (V in tokens per unit of
        weight): the integer unit grows to a common multiple of the old and the new one, so
        every V converts exactly, unless that multiple would exceed 2^256; then V is converted
        to the new unit rounded to the nearest unit (an error below one token)."""
        checked = check_weights(dict(weights))  # raises before anything changes
        new_k, new_unit = _token_units(checked)
        k = math.lcm(self._k, new_k)
        if k.bit_length() <= self._MAX_UNIT_BITS:
            old = k // self._k
            vs = {t: v * old for t, v in self._v.items()}
            clock = self._clock * old
        else:
            k, old_k = new_k, self._k
            vs = {t: (2 * v * k + old_k) // (2 * old_k) for t, v in self._v.items()}
            clock = (2 * self._clock * k + old_k) // (2 * old_k)
        new = k // new_k
        unit = {t: u * new for t, u in new_unit.items()}
        report = self._report(vs, clock, k, checked)  # built before the commit: it cannot fail after it
        # The commit: plain assignments, nothing here can raise.
        self._v, self._clock, self.weights, self._k, self._unit = vs, clock, checked, k, unit
        self._stale = True  # every key holds the old V: the next pick rebuilds the order
        return report

    # -- the policy --
    def _pick(self) -> str:
        # The smallest (V, head arrival, name); V is exact, so ties are real ties. With a heap
        # an admission costs O(log tenants): only the admitted tenant's entry changes.
        key, heap = self._key, self._heap
        if self._stale:
            v = self._v
            key = self._key = {t: (v[t], e[1], t) for t, e in key.items()}
            heap = self._heap = list(key.values())
            heapify(heap)
            self._stale = False
        while heap:
            top = heap[0]
            if key.get(top[2]) is top:
                return top[2]
            heappop(heap)
        raise IndexError("peek from an empty fair-share queue")

    def _rekey(self, tenant: str, q: RequestQueue) -> None:
        """After a change to one tenant's queue or V: its entry in the order."""
        if not q:
            del self._active[tenant]
            del self._key[tenant]
            return
        entry = self._key[tenant] = (self._v[tenant], _head(q).arrival_time, tenant)
        if not self._stale:
            heappush(self._heap, entry)
            if len(self._heap) > 4 * len(self._key) + 64:  # mostly outdated entries
                self._stale = True

    def _add_vtime(self, tenant: str, tokens: int) -> None:
        self._v[tenant] = self._v.get(tenant, self._clock) + tokens * self._unit.get(tenant, self._k)

    def charge(self, requests: dict[str, Any], num_scheduled_tokens: dict[str, int]) -> None:
        """Add one step's scheduled tokens to each tenant's virtual service, less what the
        requests prepaid at admission."""
        # Runs after every step, so it is written for speed. Measured with bench/bench_schedule.py
        # (500 waiting, 64 running, 8 tenants; ratio of schedule() CPU time patched/unpatched):
        # 1.02-1.03 as written, 1.07-1.10 for the plain loop (each request's tenant looked up
        # and charged n - prepaid), past the 1.05 goal. The plain loop states the rule; this is
        # the same sum. One token per scheduled request, counted per tenant and carried from
        # one step to the next: most scheduled requests are the same as in the step before, so
        # only the difference is looked at (in C). The rest are tokens beyond the first (prefills,
        # speculative tokens), less what was prepaid: `extra` of them are still to be found.
        last, count, prepaid, admitted = self._last, self._last_count, self._prepaid, self._admitted
        extra = sum(num_scheduled_tokens.values()) - len(num_scheduled_tokens)
        delta: dict[str, int] = {}
        new: Iterable[str] = ()
        n: int | None  # a request's tokens this step; None below: not scheduled this step
        if num_scheduled_tokens.keys() != last.keys():
            for req_id in last.keys() - num_scheduled_tokens.keys():  # not scheduled this time
                count[last.pop(req_id)] -= 1
            new = num_scheduled_tokens.keys() - last.keys()
            for req_id in new:  # usually admitted in this step, with its prefill prepaid
                tenant = admitted.get(req_id)
                if tenant is None:  # admitted some other way (vLLM's KV-holding queue)
                    request = requests.get(req_id)
                    tenant = tenant_of(request) if request is not None else _UNKNOWN
                last[req_id] = tenant
                count[tenant] += 1
                n = num_scheduled_tokens[req_id]
                paid = self._use_prepaid(req_id, n)
                extra -= n - 1
                if n - 1 - paid:
                    delta[tenant] = delta.get(tenant, 0) + n - 1 - paid
        if extra:  # requests scheduled again with more than one token (prefill chunks, speculation)
            for req_id, n in num_scheduled_tokens.items():
                if n != 1 and req_id not in new:
                    tenant = last[req_id]
                    delta[tenant] = delta.get(tenant, 0) + n - 1 - self._use_prepaid(req_id, n)
        if prepaid:  # left over: a long prefill's one-token last chunk, or requests not scheduled
            for req_id in list(prepaid):
                n = num_scheduled_tokens.get(req_id)
                if n is None:
                    if req_id not in requests:  # finished or aborted
                        del prepaid[req_id]
                elif n == 1 and req_id not in new:
                    tenant = last[req_id]
                    delta[tenant] = delta.get(tenant, 0) - self._use_prepaid(req_id, 1)
        v, unit, k, clock = self._v, self._unit, self._k, self._clock
        for tenant, n in count.items():
            if delta:
                n += delta.get(tenant, 0)
            if n and tenant != _UNKNOWN:
                v[tenant] = v.get(tenant, clock) + n * unit.get(tenant, k)
        admitted.clear()
        self._stale = True
        self._steps += 1
        if self._steps % 1024 == 0:  # forget tenants that had nothing scheduled for a while
            for tenant in [t for t, n in count.items() if not n]:
                del count[tenant]
        if len(v) > self._forget_at:
            self._forget_idle()

    def _use_prepaid(self, req_id: str, tokens: int) -> int:
        """How many of a request's `tokens` scheduled in this step it already paid for."""
        paid = self._prepaid.pop(req_id, 0)
        if paid > tokens:
            self._prepaid[req_id] = paid - tokens
            return tokens
        return paid

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
            head = None
        else:
            head = _head(q)
        if front:
            q.prepend_request(request)
        else:
            q.add_request(request)
        self._len += 1
        if _head(q) is not head:  # usually it is: a request added behind others
            self._rekey(tenant, q)

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
        v = self._v[tenant]
        if v > self._clock:
            self._clock = v
        req_id = request.request_id
        self._admitted[req_id] = tenant
        pending = request.num_tokens - request.num_computed_tokens
        if pending > 0:
            self._prepaid[req_id] = pending
            v = self._v[tenant] = v + pending * self._unit.get(tenant, self._k)
        # _rekey(), knowing that this tenant's entry is the heap's top: replaced in one pass
        # (this runs for every admission).
        if not q:
            del self._active[tenant]
            del self._key[tenant]
            heappop(self._heap)
        else:
            entry = self._key[tenant] = (v, _head(q).arrival_time, tenant)
            heapreplace(self._heap, entry)
        return request

    def _forget_idle(self) -> None:
        # Many short-lived tenant names must not grow the state without bound: forget the
        # tenants with nothing waiting and nothing scheduled in the last step. One that comes
        # back starts at the clock like a new tenant (what it had used beyond the clock is
        # forgiven). The threshold doubles with the tenants that remain, so that this runs
        # rarely (amortized O(1) per step).
        count = self._last_count
        for tenant in [t for t in self._v if t not in self._active and not count.get(t)]:
            del self._v[tenant]
            self._queues.pop(tenant, None)
        self._forget_at = 2 * len(self._v) + 64

    def prepend_request(self, request: Any) -> None:
        # Back in the queue: skipped for this step, or preempted. Refund what it prepaid and did
        # not use; it pays again when admitted again.
        prepaid = self._prepaid.pop(request.request_id, 0)
        if prepaid:
            tenant = tenant_of(request)
            self._add_vtime(tenant, -prepaid)
            if tenant in self._key:
                self._rekey(tenant, self._active[tenant])
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
        self._rekey(tenant, q)

    def remove_requests(self, requests: Iterable[Any]) -> None:
        by_tenant: dict[str, list[Any]] = {}
        for request in requests:
            by_tenant.setdefault(tenant_of(request), []).append(request)
        for tenant, group in by_tenant.items():
            q = self._active.get(tenant)
            if q is not None:
                q.remove_requests(group)
                self._rekey(tenant, q)
        self._len = sum(len(q) for q in self._active.values())

    def __bool__(self) -> bool:
        return self._len > 0

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[Any]:
        """Tenant by tenant, each in vLLM's order (not the admission order across tenants)."""
        for q in list(self._active.values()):
            yield from q


def queue_of(scheduler: Any) -> FairShareQueue | None:
    """The fair-share queue of a vLLM Scheduler, or None where the policy is not applied."""
    waiting = getattr(scheduler, "waiting", None)
    return waiting if isinstance(waiting, FairShareQueue) else None


class FairShareScheduler(Patch):
    """Engine core only: the scheduler's waiting queue becomes a FairShareQueue, and every
    step's scheduled tokens are charged to their tenants."""

    name = "fair_share"
    target = "vllm.v1.core.sched.scheduler:Scheduler"
    roles = ("engine_core",)

    @override
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:  # self: vLLM's Scheduler
        FairShareScheduler.original("__init__")(self, *args, **kwargs)
        queue = FairShareQueue(self.policy, parse_weights(os.environ.get(WEIGHTS_ENV)))
        for request in self.waiting:  # empty in vLLM today; kept so nothing could be lost
            queue.add_request(request)
        self.waiting = queue

    @override
    def _update_after_schedule(self: Any, scheduler_output: Any) -> None:  # self: vLLM's Scheduler
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
    roles = ("front_end",)

    @override
    def _verify_args(self: Any) -> None:  # self: vLLM's SamplingParams
        TenantValidation.original("_verify_args")(self)
        why = tenant_error(self.extra_args)
        if why:
            raise _BadRequest(why)


PATCHES = (FairShareScheduler, TenantValidation)
