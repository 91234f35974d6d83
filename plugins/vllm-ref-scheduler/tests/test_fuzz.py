"""Every input of the fair-share policy under hostile values (hypothesis): REF_SCHEDULER_WEIGHTS
and the weights of a live change (one rule, check_weight), and vllm_xargs['ref_tenant'].

Each property: a valid result inside the documented bounds, or a ValueError naming the plugin,
never another exception; and a refused weight change leaves the queue exactly as it was."""

from __future__ import annotations

import copy
import math
from fractions import Fraction

import pytest
import vllm_ref_scheduler
from hypothesis import given
from hypothesis import strategies as st
from vllm.sampling_params import SamplingParams
from vllm.v1.core.sched.request_queue import SchedulingPolicy
from vllm.v1.request import Request
from vllm_ref_harness.hostile import FUZZ, hostile_text, hostile_values, number_texts, numbers
from vllm_ref_scheduler import fair_share
from vllm_ref_scheduler.fair_share import (
    MAX_WEIGHTED_TENANTS,
    WEIGHT_MAX,
    WEIGHT_MAX_DENOMINATOR,
    WEIGHT_MIN,
    FairShareQueue,
    check_weight,
    parse_weights,
    tenant_error,
)

TENANTS = st.one_of(st.sampled_from(["gold", "free", "a", "B-1.x_y", "default"]), hostile_text(70))


def in_bounds(weights: dict[str, Fraction]) -> bool:
    return all(WEIGHT_MIN <= w <= WEIGHT_MAX and w.denominator <= WEIGHT_MAX_DENOMINATOR for w in weights.values())


def refused(exc: ValueError, source: str = fair_share.WEIGHTS_ENV) -> None:
    text = str(exc)
    assert text.startswith("ref_scheduler: ") and source in text and "from 0.001 to 1000000" in text, text
    assert len(text) < 2000, len(text)  # the refusal echoes the input, never all of it


def request(tenant: str, name: str, arrival: float, prompt_len: int = 5) -> Request:
    params = SamplingParams(max_tokens=4, extra_args={"ref_tenant": tenant})
    return Request(name, list(range(1, prompt_len + 1)), params, None, arrival_time=arrival)


def busy_queue() -> FairShareQueue:
    """A queue with history: three tenants, admissions charged, some still waiting."""
    q = FairShareQueue(SchedulingPolicy.FCFS, parse_weights("gold=3,free=1/2"))
    for i, tenant in enumerate(["gold", "free", "other", "gold", "free", "other"]):
        q.add_request(request(tenant, f"r{i}", float(i), prompt_len=3 + i))
    for _ in range(3):
        q.pop_request()
    return q


def state(q: FairShareQueue) -> dict:
    """Everything set_weights may change, plus what an operator reads."""
    return copy.deepcopy({"v": q._v, "clock": q._clock, "k": q._k, "unit": q._unit, "weights": q.weights,
                          "snapshot": q.snapshot()})


def assert_finite_report(report: dict) -> None:
    assert math.isfinite(report["clock"])
    for w in report["weights"].values():
        assert math.isfinite(w) and w >= float(WEIGHT_MIN)
    for t in report["tenants"].values():
        assert math.isfinite(t["weight"]) and t["weight"] > 0 and math.isfinite(t["virtual_service"])


# -- the three cases of issue 27 ------------------------------------------------------------------

@pytest.mark.parametrize("raw", ["1" * 400, "1e-320", "1e308", "1/" + "9" * 400, "9" * 4000, "1e999999999"])
def test_issue_27_extreme_weights_are_refused_by_the_one_rule(raw):
    with pytest.raises(ValueError) as e:
        parse_weights(f"gold={raw}")
    refused(e.value)
    with pytest.raises(ValueError):  # a live change obeys the same rule
        busy_queue().set_weights({"gold": raw})


def test_issue_27_a_400_digit_weight_in_the_setting_fails_start_up(monkeypatch):
    monkeypatch.setenv(fair_share.WEIGHTS_ENV, "gold=" + "1" * 400)
    monkeypatch.delenv("REF_PATCHES", raising=False)
    with pytest.raises(ValueError) as e:
        vllm_ref_scheduler.register()  # raises before any patch is applied
    refused(e.value)


def test_the_bounds_themselves_are_accepted():
    got = parse_weights("lo=0.001,hi=1000000,third=1/3,fine=0.000001e3,six=123456.654321")
    assert got == {"lo": WEIGHT_MIN, "hi": WEIGHT_MAX, "third": Fraction(1, 3), "fine": WEIGHT_MIN,
                   "six": Fraction("123456.654321")}
    for bad in ("0.0009999", "1000000.000001", "1/1000001", "0.0000001e3", "1.0000001"):
        with pytest.raises(ValueError):
            parse_weights(f"x={bad}")
    with pytest.raises(ValueError, match="twice"):
        parse_weights("a=1,a=2")
    with pytest.raises(ValueError, match=f"more than {MAX_WEIGHTED_TENANTS}"):
        parse_weights(",".join(f"t{i}=1" for i in range(MAX_WEIGHTED_TENANTS + 1)))


# -- properties ---------------------------------------------------------------------------------

@FUZZ
@given(st.one_of(hostile_text(), st.lists(st.tuples(TENANTS, number_texts()), max_size=6).map(
    lambda items: ",".join(f"{t}={w}" for t, w in items))))
def test_weights_text_is_parsed_in_bounds_or_refused(text):
    try:
        weights = parse_weights(text)
    except ValueError as exc:
        refused(exc)
        return
    assert in_bounds(weights)
    assert_finite_report(FairShareQueue(SchedulingPolicy.FCFS, weights).snapshot())


@FUZZ
@given(TENANTS, st.one_of(hostile_values(), numbers(), number_texts()))
def test_one_weight_from_any_source_is_in_bounds_or_refused(tenant, value):
    try:
        weight = check_weight(tenant, value, source="field 'weights'")
    except ValueError as exc:
        refused(exc, "field 'weights'")
        return
    assert in_bounds({tenant: weight})


@FUZZ
@given(st.dictionaries(TENANTS, st.one_of(numbers(), number_texts(), hostile_values()), max_size=5))
def test_a_refused_weight_change_leaves_the_queue_as_it_was(weights):
    q = busy_queue()
    before = state(q)
    try:
        report = q.set_weights(weights)
    except ValueError as exc:
        refused(exc, "weights")
        assert state(q) == before
        return
    assert report == q.snapshot()
    assert_finite_report(report)
    # What each tenant used is kept, to within one unit of the new integer scale.
    for t, v in before["snapshot"]["tenants"].items():
        assert report["tenants"][t]["virtual_service"] == pytest.approx(v["virtual_service"], rel=1e-12, abs=1e-9)
    assert q.pop_request() is not None  # and the policy still works


def test_ever_new_weights_keep_the_integer_unit_bounded():
    q = busy_queue()
    used = q.snapshot()["tenants"]["gold"]["virtual_service"]
    primes = [n for n in range(1000, 4000) if all(n % d for d in range(2, 64))][:200]
    for p in primes:  # each PUT a new prime numerator: exact units would be their product
        q.set_weights({"gold": Fraction(p, 7)})
    assert q._k.bit_length() <= FairShareQueue._MAX_UNIT_BITS
    assert q.snapshot()["tenants"]["gold"]["virtual_service"] == pytest.approx(used, rel=1e-9)


@FUZZ
@given(hostile_values())
def test_any_tenant_value_is_accepted_or_refused_with_a_bounded_message(value):
    why = tenant_error({"ref_tenant": value})
    if why is None:
        assert isinstance(value, str) and 1 <= len(value) <= 64
    else:
        assert why.startswith("ref_scheduler: vllm_xargs['ref_tenant']") and len(why) < 500


@pytest.mark.vllm
def test_issue_27_the_setting_fails_start_up_of_a_real_vllm(vllm, tiny_model):
    """End to end for the setting: the 400-digit weight stops a real vLLM at start-up, in the
    front end, with the plugin's message (it used to start, and every report failed after)."""
    run = vllm.run(tiny_model, requests=[{"prompt": "Hi"}], sampling={"max_tokens": 2}, plugins=["ref_scheduler"],
                   env={fair_share.WEIGHTS_ENV: "gold=" + "1" * 400}, expect_failure=True, timeout=600)
    assert not run.outputs
    text = run.extra["error"] + run.log
    assert "ref_scheduler: REF_SCHEDULER_WEIGHTS must be" in text and "from 0.001 to 1000000" in text
