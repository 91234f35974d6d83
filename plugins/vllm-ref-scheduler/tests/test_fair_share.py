"""The fair-share policy on a real vLLM Scheduler (built without an engine), the request
validation, and the plugin's entry point."""

import logging
import multiprocessing
import random
import sys
from collections import Counter
from fractions import Fraction

import pytest
import vllm_ref_common
import vllm_ref_scheduler
from vllm_ref_common import patching
from vllm_ref_scheduler import fair_share
from vllm_ref_scheduler.fair_share import FairShareQueue, FairShareScheduler, TenantValidation
from vllm_ref_scheduler.testing import finish_order, make_request, make_scheduler, step


@pytest.fixture(autouse=True)
def clean(monkeypatch):
    monkeypatch.setattr(vllm_ref_common.gate, "_warned", set())
    monkeypatch.delenv("REF_PATCHES", raising=False)
    monkeypatch.delenv(fair_share.WEIGHTS_ENV, raising=False)
    yield
    for p in fair_share.PATCHES:
        patching.remove(p)


@pytest.fixture
def patched():
    assert patching.apply(FairShareScheduler)


def contended(scheduler, workload):
    """Queue (name, tenant) requests in order behind a running blocker; return finish order."""
    scheduler.add_request(make_request("warm", max_tokens=8, name="blocker"))
    for name, tenant in workload:
        scheduler.add_request(make_request(tenant, name=name))
    return [r for r in finish_order(scheduler) if r != "blocker"]


WORKLOAD = [("a1", "A"), ("a2", "A"), ("a3", "A"), ("a4", "A"), ("b1", "B"), ("b2", "B")]


def test_unpatched_vllm_is_fcfs(tiny_model):
    s = make_scheduler(tiny_model)
    assert contended(s, WORKLOAD) == ["a1", "a2", "a3", "a4", "b1", "b2"]


def test_equal_weights_alternate_tenants(tiny_model, patched):
    s = make_scheduler(tiny_model)
    assert isinstance(s.waiting, FairShareQueue)  # the patched __init__ changed the scheduler's state
    assert contended(s, WORKLOAD) == ["a1", "b1", "a2", "b2", "a3", "a4"]
    # every scheduled token was charged: 8 prompt + 3 decode tokens per request, weight 1
    assert s.waiting.vtime["A"] == 4 * 11 and s.waiting.vtime["B"] == 2 * 11


def test_weights_share_in_proportion(tiny_model, patched, monkeypatch):
    monkeypatch.setenv(fair_share.WEIGHTS_ENV, "gold=3")
    s = make_scheduler(tiny_model)
    work = [("f1", "free"), ("f2", "free"), ("f3", "free"),
            ("g1", "gold"), ("g2", "gold"), ("g3", "gold"), ("g4", "gold")]
    assert contended(s, work) == ["f1", "g1", "g2", "g3", "f2", "g4", "f3"]


@pytest.mark.parametrize(("use_patch", "first_step"), [(False, {"a1", "a2", "a3", "a4"}),
                                                      (True, {"a1", "b1", "a2", "b2"})])
def test_admissions_within_one_step_see_each_other(tiny_model, use_patch, first_step):
    # Four free slots at once: the prefill charged at admission makes them alternate tenants.
    if use_patch:
        patching.apply(FairShareScheduler)
    s = make_scheduler(tiny_model, max_num_seqs=4)
    for name, tenant in WORKLOAD:
        s.add_request(make_request(tenant, name=name))
    out, _ = step(s)
    assert {r.req_id for r in out.scheduled_new_reqs} == first_step


def test_without_tenants_the_order_is_vllms_own(tiny_model, patched):
    work = [(f"r{i}", None) for i in range(5)]
    assert contended(make_scheduler(tiny_model, max_num_seqs=2), work) == [f"r{i}" for i in range(5)]


def test_priority_policy_still_orders_inside_a_tenant(tiny_model, patched):
    s = make_scheduler(tiny_model, policy="priority")
    s.add_request(make_request("warm", max_tokens=8, name="blocker"))
    for name, prio in [("low", 5), ("high", 0), ("mid", 2)]:
        s.add_request(make_request("A", name=name, priority=prio))
    assert [r for r in finish_order(s) if r != "blocker"] == ["high", "mid", "low"]


def test_idle_tenant_banks_no_credit():
    q = FairShareQueue(policy=make_scheduler_policy())
    for i in range(3):
        q.add_request(make_request("busy", name=f"busy{i}", arrival=float(i)))
    for _ in range(3):
        r = q.pop_request()
        q.charge({r.request_id: r}, {r.request_id: 100})
    q.add_request(make_request("busy", name="busy3", arrival=10.0))
    q.pop_request()
    # "late" was idle all along: it starts at the clock, not at zero
    q.add_request(make_request("late", name="late0", arrival=11.0))
    assert q.vtime["late"] == q.clock == 300


def test_idle_tenant_keeps_its_debt_and_many_tenants_stay_bounded():
    q = FairShareQueue(policy=make_scheduler_policy())
    big = make_request("big", name="big", prompt_len=50, arrival=0.0)
    q.add_request(big)
    q.pop_request()
    q.charge({}, {"big": 50})  # then finished: "big" is idle with V = 50 above the clock (0)
    # One-shot tenants, one after another: each is admitted at the clock, which never moves.
    for i in range(1000):
        r = make_request(f"once{i}", name=f"o{i}", prompt_len=8, arrival=float(i + 1))
        q.add_request(r)
        assert q.pop_request() is r
        q.charge({}, {r.request_id: 8})
        q.charge({}, {})
        if i == 10:  # few tenants known: nothing forgotten, "big" still owes its 50 tokens
            assert q.vtime["big"] == 50 and q.clock == 0
    assert len(q.vtime) <= 2 * 64 + 64, "one-shot tenants are forgotten"
    assert "big" not in q.vtime  # forgotten too: it comes back at the clock, like a new tenant
    q.add_request(make_request("big", name="big2", arrival=2000.0))
    assert q.vtime["big"] == q.clock == 0


def test_queue_keeps_vllm_semantics():
    q = FairShareQueue(policy=make_scheduler_policy())
    reqs = [make_request(t, name=n, arrival=float(i)) for i, (n, t) in enumerate(
        [("a1", "A"), ("b1", "B"), ("a2", "A"), ("c1", "C")])]
    for r in reqs:
        q.add_request(r)
    assert len(q) == 4 and q and sorted(r.request_id for r in q) == ["a1", "a2", "b1", "c1"]
    head = q.peek_request()
    assert q.pop_request() is head
    q.prepend_requests([head])  # what vLLM does with requests it skipped this step
    assert q.peek_request() is head and len(q) == 4
    q.remove_requests([reqs[1], reqs[3]])
    q.remove_request(reqs[0])
    assert [r.request_id for r in q] == ["a2"] and len(q) == 1
    q.pop_request()
    assert not q and len(q) == 0
    with pytest.raises(IndexError):
        q.peek_request()


def test_incremental_charging_equals_a_fresh_count():
    # charge() keeps each tenant's count of scheduled requests from one step to the next and
    # updates it by the set difference. Drive it through random steps (admissions, finishes,
    # requests leaving and coming back, prefill chunks, ids the engine no longer knows, and the
    # periodic purge at step 1024) beside a twin queue whose counts are rebuilt every step.
    rng = random.Random(7)
    weights = {"A": 3, "B": Fraction(1, 2)}
    fast, fresh = (FairShareQueue(make_scheduler_policy(), weights) for _ in range(2))
    known: dict[str, object] = {}
    scheduled: dict[str, int] = {}
    for i in range(1500):
        for _ in range(rng.randint(0, 3)):
            r = make_request(rng.choice("ABCD"), prompt_len=rng.randint(1, 20), arrival=float(i))
            known[r.request_id] = r
            fast.add_request(r)
            fresh.add_request(r)
        for _ in range(rng.randint(0, 2)):
            if fast:
                r = fast.pop_request()
                assert fresh.pop_request() is r
                scheduled[r.request_id] = rng.randint(1, 8)  # a prefill chunk
        for req_id in list(scheduled):
            roll = rng.random()
            if roll < 0.08:
                del scheduled[req_id]  # finished ...
                if rng.random() < 0.5:
                    known.pop(req_id, None)  # ... and forgotten by the engine
            elif roll < 0.12:
                scheduled[req_id] = 0  # not scheduled this step; back in a later one
            else:
                scheduled[req_id] = 1 if rng.random() < 0.8 else rng.randint(2, 5)
        step_tokens = {r: n for r, n in scheduled.items() if n}
        fresh._last, fresh._last_count = {}, Counter()
        fast.charge(known, step_tokens)
        fresh.charge(known, step_tokens)
        assert fast.vtime == fresh.vtime, f"step {i}"
    assert len(fast.vtime) >= 3 and fast.clock > 0


@pytest.mark.parametrize("policy", ["FCFS", "PRIORITY"])
def test_incremental_order_equals_a_fresh_minimum(policy):
    # The queue keeps its order in a heap updated one tenant at a time. Through random adds,
    # admissions, skips and preemptions (prepend), removals and charged steps, every peek must
    # still be the head of the tenant with the smallest (V, head arrival, name), computed afresh.
    from vllm.v1.core.sched.request_queue import SchedulingPolicy
    rng = random.Random(11)
    q = FairShareQueue(SchedulingPolicy[policy], {"A": 3, "B": Fraction(1, 2)})
    waiting: list = []
    admitted: dict = {}
    for i in range(3000):
        roll = rng.random()
        if roll < 0.35 or not waiting:
            r = make_request(rng.choice("ABCDE"), prompt_len=rng.randint(1, 20), arrival=float(rng.randint(0, i)),
                             priority=rng.randint(0, 2))
            q.add_request(r)
            waiting.append(r)
        elif roll < 0.75:
            r = q.pop_request()
            waiting.remove(r)
            if rng.random() < 0.2:  # skipped this step: back to the front of its tenant
                q.prepend_requests([r])
                waiting.append(r)
            else:
                admitted[r.request_id] = r
        elif roll < 0.8 and admitted:  # preempted: back to the front (FCFS) or by priority
            r = admitted.pop(rng.choice(sorted(admitted)))
            q.prepend_request(r)
            waiting.append(r)
        elif roll < 0.85:
            gone = rng.sample(waiting, min(len(waiting), rng.randint(1, 3)))
            if len(gone) == 1:
                q.remove_request(gone[0])
            else:
                q.remove_requests(gone)
            for r in gone:
                waiting.remove(r)
        else:
            step_ids = rng.sample(sorted(admitted), min(len(admitted), rng.randint(0, 6)))
            q.charge(admitted, {r: rng.randint(1, 40) for r in step_ids})
        assert len(q) == len(waiting)
        if waiting:
            heads = {t: qq.peek_request() for t, qq in q._queues.items() if qq}
            want = min(heads, key=lambda t: (q._v[t], heads[t].arrival_time, t))
            assert q.peek_request() is heads[want], f"operation {i}"


def make_scheduler_policy():
    from vllm.v1.core.sched.request_queue import SchedulingPolicy
    return SchedulingPolicy.FCFS


@pytest.mark.parametrize("value", [5, None, "", "has space", "x" * 65, "-lead", ["A"], {"t": 1}])
def test_bad_tenant_values_are_refused_with_a_clear_message(value):
    from vllm import SamplingParams
    from vllm.exceptions import VLLMValidationError

    assert patching.apply(TenantValidation)
    with pytest.raises(VLLMValidationError, match=r"ref_scheduler: vllm_xargs\['ref_tenant'\] must be"):
        SamplingParams(extra_args={"ref_tenant": value})


def test_good_and_foreign_keys_pass_validation():
    from vllm import SamplingParams

    assert patching.apply(TenantValidation)
    assert SamplingParams(extra_args={"ref_tenant": "team-1.eu_x"}).extra_args["ref_tenant"] == "team-1.eu_x"
    assert SamplingParams(extra_args={"other_plugin_key": [1, 2]}).extra_args  # not our namespace
    patching.remove(TenantValidation)
    assert SamplingParams(extra_args={"ref_tenant": 5}).extra_args == {"ref_tenant": 5}


@pytest.mark.parametrize("text", ["gold", "gold=0", "gold=-1", "gold=abc", "bad name=2", "=3",
                                  "g=inf", "g=nan", "g=1/0"])
def test_bad_weights_setting(text):
    with pytest.raises(ValueError, match="ref_scheduler: REF_SCHEDULER_WEIGHTS must be a comma list"):
        fair_share.parse_weights(text)


def test_weights_parse():
    assert fair_share.parse_weights(" gold=3, free=0.5 ,third=1/3") == {
        "gold": 3, "free": Fraction(1, 2), "third": Fraction(1, 3)}
    assert fair_share.parse_weights(None) == {}


def test_equal_shares_tie_exactly():
    # Three 1-token prompts at weight 10 and one at weight 10/3 are both V = 3/10. In floats
    # 0.1 + 0.1 + 0.1 > 0.3 and "b" would win; exactly, it is a tie and a4 arrived first.
    q = FairShareQueue(make_scheduler_policy(), fair_share.parse_weights("a=10,b=10/3"))
    for name, arrival in [("a1", 0), ("a2", 1), ("a3", 2), ("b1", 3), ("a4", 4), ("b2", 5)]:
        q.add_request(make_request(name[0], name=name, prompt_len=1, arrival=float(arrival)))
    order = [q.pop_request().request_id for _ in range(6)]
    assert order == ["a1", "b1", "a2", "a3", "a4", "b2"]
    assert q.vtime == {"a": 0.4, "b": 0.6}


def test_live_weight_change_keeps_what_was_used_and_orders_by_the_new_weights():
    q = FairShareQueue(make_scheduler_policy(), fair_share.parse_weights("a=2"))
    for name, tenant, arrival in [("a1", "a", 0), ("b1", "b", 1)]:
        q.add_request(make_request(tenant, name=name, prompt_len=6, arrival=float(arrival)))
    assert [q.pop_request().request_id for _ in range(2)] == ["a1", "b1"]
    assert q.vtime == {"a": 3.0, "b": 6.0}  # 6 tokens at weight 2 and at weight 1
    q.set_weights(fair_share.parse_weights("b=3/2,c=7"))  # a back to 1; new unit: lcm(2, 3*7)
    assert q.vtime == {"a": 3.0, "b": 6.0} and q.clock == 0.0  # used service is not rewritten
    for name, tenant, arrival in [("a2", "a", 2), ("b2", "b", 3), ("a3", "a", 4), ("b3", "b", 5)]:
        q.add_request(make_request(tenant, name=name, prompt_len=3, arrival=float(arrival)))
    # a pays 3 per request at weight 1, b pays 3 / (3/2) = 2: a2 (V 3), then a and b both at 6
    # and b's head arrived first: b2, a3 (6), b3 (8).
    assert [q.pop_request().request_id for _ in range(4)] == ["a2", "b2", "a3", "b3"]
    assert q.vtime == {"a": 9.0, "b": 10.0}
    snap = q.snapshot()
    assert snap["weights"] == {"b": 1.5, "c": 7.0} and snap["clock"] == 8.0
    assert snap["tenants"]["a"] == {"weight": 1.0, "virtual_service": 9.0, "waiting": 0}
    assert snap["tenants"]["b"]["weight"] == 1.5


def test_queue_of_finds_the_policy_only_where_it_is_applied(tiny_model, patched):
    from vllm.v1.core.sched.scheduler import Scheduler

    assert fair_share.queue_of(make_scheduler(tiny_model)) is not None
    patching.remove(FairShareScheduler)
    assert isinstance(make_scheduler(tiny_model), Scheduler)
    assert fair_share.queue_of(make_scheduler(tiny_model)) is None


def test_register_applies_by_role(monkeypatch):
    vllm_ref_scheduler.register()  # pytest is a MainProcess: the front end
    assert patching.applied_patches() == ["fair_share_validation"]
    monkeypatch.setattr(multiprocessing.current_process(), "name", "EngineCore")
    vllm_ref_scheduler.register()
    assert patching.applied_patches() == ["fair_share_validation", "fair_share"]


def test_register_honours_selection(monkeypatch):
    monkeypatch.setenv("REF_PATCHES", "fair_share")
    vllm_ref_scheduler.register()
    assert patching.applied_patches() == []  # fair_share is engine-core only


def test_register_without_vllm_warns_once_and_does_nothing(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "vllm", None)  # `import vllm` raises ImportError
    with caplog.at_level(logging.WARNING, logger="vllm_ref"):
        vllm_ref_scheduler.register()
        vllm_ref_scheduler.register()
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 1 and "ref_scheduler" in msgs[0] and "not importable" in msgs[0]
    assert patching.applied_patches() == []


def test_register_outside_supported_range(monkeypatch, caplog):
    import vllm

    monkeypatch.setattr(vllm, "__version__", "0.40.0")
    monkeypatch.delenv(vllm_ref_scheduler.ANY_VERSION_ENV, raising=False)
    with caplog.at_level(logging.WARNING, logger="vllm_ref"):
        vllm_ref_scheduler.register()
    assert patching.applied_patches() == []
    assert any("0.40.0" in r.getMessage() and "REF_SCHEDULER_ANY_VERSION" in r.getMessage()
               for r in caplog.records)
    monkeypatch.setenv(vllm_ref_scheduler.ANY_VERSION_ENV, "1")
    vllm_ref_scheduler.register()
    assert patching.applied_patches() == ["fair_share_validation"]
