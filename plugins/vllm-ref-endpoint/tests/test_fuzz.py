"""PUT /v1/ref/scheduler/weights under hostile bodies (hypothesis), through the real routes, the
real engine-side methods (engine.py) and a real fair-share queue; only the engine client's
transport is in-process.

Each body: a 200 whose answer is the queue's new state, or a 400 naming the plugin and the field;
never a 5xx, and after a refusal the tenants route reads exactly what it read before."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from vllm.sampling_params import SamplingParams
from vllm.v1.core.sched.request_queue import SchedulingPolicy
from vllm.v1.request import Request
from vllm_ref_endpoint import PREFIX, WRITE_ENV
from vllm_ref_endpoint.engine import EngineMethods
from vllm_ref_endpoint.routes import RefEndpointPlugin
from vllm_ref_harness.hostile import FUZZ, hostile_text, number_texts, numbers
from vllm_ref_scheduler.fair_share import FairShareQueue, parse_weights

WEIGHTS = PREFIX + "/scheduler/weights"
TENANTS = PREFIX + "/scheduler/tenants"


class InProcessCore:
    """vLLM's engine-core utility calls, answered by the real engine-side methods on `engine`."""

    def __init__(self, engine):
        self.engine = engine

    async def call_utility_all_async(self, method, *args):
        return [getattr(EngineMethods, method)(self.engine, *args)]


def busy_engine() -> SimpleNamespace:
    q = FairShareQueue(SchedulingPolicy.FCFS, parse_weights("gold=3,free=1/2"))
    for i, tenant in enumerate(["gold", "free", "other", "gold", "free"]):
        params = SamplingParams(max_tokens=4, extra_args={"ref_tenant": tenant})
        q.add_request(Request(f"r{i}", list(range(1, 4 + i)), params, None, arrival_time=float(i)))
    q.pop_request(), q.pop_request()
    return SimpleNamespace(scheduler=SimpleNamespace(waiting=q))


def client_for(engine) -> TestClient:
    app = FastAPI()
    plugin = RefEndpointPlugin()
    plugin.attach_router(app)
    asyncio.run(plugin.init_state(SimpleNamespace(engine_core=InProcessCore(engine)), app.state, None))
    return TestClient(app, raise_server_exceptions=False)  # a 500 is a failed assertion, not a crash


@pytest.fixture(scope="module")
def api():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(WRITE_ENV, "1")
        engine = busy_engine()
        yield client_for(engine), engine


def put_raw(client, body: bytes):
    return client.put(WEIGHTS, content=body, headers={"Content-Type": "application/json"})


def check(client, engine, body: bytes):
    """PUT `body`: refused with a 400 that changed nothing, or accepted with the new state."""
    before = client.get(TENANTS).json()
    queue_before = (dict(engine.scheduler.waiting._v), engine.scheduler.waiting._k)
    r = put_raw(client, body)
    assert r.status_code in (200, 400), (r.status_code, r.text[:500])
    if r.status_code == 400:
        detail = r.json()["detail"]
        assert detail.startswith("ref_endpoint: field 'weights") and "accepted:" in detail, detail
        assert len(detail) < 3000
        assert client.get(TENANTS).json() == before
        assert (dict(engine.scheduler.waiting._v), engine.scheduler.waiting._k) == queue_before
    else:
        assert r.json() == client.get(TENANTS).json()
    return r


def as_json(value) -> bytes:
    return json.dumps(value).encode()  # NaN and Infinity as Python's json writes (and reads) them


# -- the case of issue 27: a 400-digit integer --------------------------------------------------

def test_issue_27_a_400_digit_weight_is_a_400_and_changes_nothing(api):
    client, engine = api
    for body in ({"weights": {"gold": "1" * 400}}, {"weights": {"gold": int("1" * 400)}}):
        r = check(client, engine, as_json(body))
        assert r.status_code == 400 and "'weights.gold'" in r.text and "from 0.001 to 1000000" in r.text
    # The tenants route still answers (it was the one that could only fail from then on).
    assert client.get(TENANTS).status_code == 200


@pytest.mark.parametrize("body", [
    b"[" * 100_000 + b"]" * 100_000,  # deeper than json can parse: a RecursionError, not a ValueError
    b'{"weights": ' * 50_000 + b"1" + b"}" * 50_000,
    b"\xff\xfe not utf-8", b"", b"null", b'"weights"', b'{"weights": {"gold": 1e999}}',
    b'{"weights": {"gold": NaN}}', b'{"weights": {"gold": "\\ud800"}}', b'{"weights": {"\\ud800": 1}}',
    b'{"weights": {"gold": ' + b"9" * 5000 + b"}}",
])
def test_unparseable_and_absurd_bodies_are_400s(api, body):
    assert check(*api, body).status_code == 400


# -- properties ---------------------------------------------------------------------------------

JSON_SCALARS = st.one_of(st.none(), st.booleans(), numbers(), number_texts(), hostile_text(60))
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(hostile_text(10), inner, max_size=3)), max_leaves=8)
TENANT_NAMES = st.one_of(st.sampled_from(["gold", "free", "other", "new.tenant-1"]), hostile_text(80))


@FUZZ
@given(st.dictionaries(TENANT_NAMES, st.one_of(numbers(), number_texts(), JSON_VALUES), min_size=1, max_size=4))
def test_any_weights_object_is_applied_whole_or_refused_without_a_trace(api, weights):
    check(*api, as_json({"weights": weights}))


@FUZZ
@given(st.one_of(JSON_VALUES, st.dictionaries(st.sampled_from(["weights", "extra"]), JSON_VALUES, max_size=2)))
def test_any_json_body_is_applied_whole_or_refused_without_a_trace(api, body):
    check(*api, as_json(body))


@FUZZ
@given(st.binary(max_size=200))
def test_any_bytes_are_refused_without_a_trace(api, body):
    check(*api, body)


def test_after_the_fuzzing_the_route_still_changes_weights(api):
    client, engine = api
    r = check(client, engine, as_json({"weights": {"gold": 2, "free": "1/3"}}))
    assert r.status_code == 200 and r.json()["weights"] == {"free": pytest.approx(1 / 3), "gold": 2.0}
