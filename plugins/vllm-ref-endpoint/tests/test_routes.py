"""The routes against a fake EngineClient (no engine): status codes, messages, merging."""

from __future__ import annotations

import json

import pytest
import vllm_ref_common
from fastapi import FastAPI
from fastapi.testclient import TestClient
from vllm_ref_endpoint import PREFIX, WRITE_ENV, status
from vllm_ref_endpoint.__main__ import table
from vllm_ref_endpoint.routes import RefEndpointPlugin

TENANTS = {"clock": 2.0, "weights": {"gold": 3.0}, "tenants": {"gold": {"weight": 3.0, "virtual_service": 2.0,
                                                                        "waiting": 1}}}


class FakeCore:
    def __init__(self, tenants):
        self.tenants, self.calls = tenants, []

    async def call_utility_all_async(self, method, *args):
        self.calls.append((method, args))
        if method == "ref_endpoint_report":
            return [{**_proc("engine_core", 2)}]
        if method == "ref_endpoint_tenants":
            return [self.tenants]
        if method == "ref_endpoint_set_weights":
            return [None if self.tenants is None else {**self.tenants, "weights": {"free": 0.5, "gold": 3.0}}]
        raise AssertionError(method)


class FakeEngine:
    def __init__(self, tenants=TENANTS):
        self.engine_core = FakeCore(tenants)

    async def collective_rpc(self, method):
        assert method == "ref_endpoint_report"
        return [_proc("worker", 3, rank=0), _proc("worker", 4, rank=1)]


def _proc(role, pid, rank=None):
    ep = {"group": "vllm.general_plugins", "name": "ref_x", "value": "vllm_ref_x:register",
          "distribution": "vllm-ref-x", "version": "0.1.0", "filtered": False, "imported": True,
          "settings_set": [], "status": {"effect": role == "engine_core"}}
    return {"pid": pid, "role": role, "rank": rank, "ray": False, "roles": [role], "vllm_version": "0.32.0",
            "vllm_plugins": ["ref_x", "ref_typo"], "unknown_names": ["ref_typo"], "entry_points": [ep]}


def app_for(engine) -> TestClient:
    import asyncio

    app = FastAPI()
    plugin = RefEndpointPlugin()
    plugin.attach_router(app)
    asyncio.run(plugin.init_state(engine, app.state, None))
    return TestClient(app)


def test_plugins_report_lists_the_api_server_then_engine_cores_then_workers():
    body = app_for(FakeEngine()).get(PREFIX + "/plugins").json()
    roles = [(p["role"], p["rank"]) for p in body["processes"]]
    assert roles == [("front_end", None), ("engine_core", None), ("worker", 0), ("worker", 1)]
    front = body["processes"][0]  # computed in this (test) process by the real inventory
    assert any(e["name"] == "ref_endpoint" and e["group"] == "vllm.endpoint_plugins" for e in front["entry_points"])
    assert status()["routes"] is True


def test_no_engine_is_a_503_not_a_500():
    r = app_for(None).get(PREFIX + "/plugins")
    assert r.status_code == 503 and "ref_endpoint" in r.json()["detail"]


def test_tenants_and_inactive_scheduler():
    assert app_for(FakeEngine()).get(PREFIX + "/scheduler/tenants").json() == TENANTS
    r = app_for(FakeEngine(tenants=None)).get(PREFIX + "/scheduler/tenants")
    assert r.status_code == 409 and "ref_scheduler" in r.json()["detail"] and "not active" in r.json()["detail"]


@pytest.fixture
def writable(monkeypatch):
    monkeypatch.setenv(WRITE_ENV, "1")


def test_writes_are_off_unless_enabled(monkeypatch):
    monkeypatch.delenv(WRITE_ENV, raising=False)
    engine = FakeEngine()
    r = app_for(engine).put(PREFIX + "/scheduler/weights", json={"weights": {"gold": 2}})
    assert r.status_code == 403 and WRITE_ENV in r.json()["detail"]
    assert engine.engine_core.calls == []  # nothing reached the engine
    monkeypatch.setattr(vllm_ref_common.gate, "_warned", set())
    monkeypatch.setenv(WRITE_ENV, "maybe")
    assert app_for(engine).put(PREFIX + "/scheduler/weights", json={"weights": {"gold": 2}}).status_code == 403


@pytest.mark.parametrize(("body", "field"), [
    ({}, "'weights'"), ({"weights": []}, "'weights'"), ({"weights": {}}, "'weights'"),
    ({"weights": {"gold": 1}, "extra": 1}, "'weights'"), ({"weights": {"gold": True}}, "'weights.gold'"),
    ({"weights": {"gold": [3]}}, "'weights.gold'"), ({"weights": {"gold": "1,b=2"}}, "'weights.gold'"),
    ({"weights": {"gold": -1}}, "'weights.gold'"), ({"weights": {"gold": "inf"}}, "'weights.gold'"),
    ({"weights": {"two words": 1}}, "'weights.two words'"), ({"weights": {"gold": 0}}, "'weights.gold'"),
])
def test_bad_weights_are_a_400_naming_the_plugin_and_field(writable, body, field):
    engine = FakeEngine()
    r = app_for(engine).put(PREFIX + "/scheduler/weights", json=body)
    assert r.status_code == 400, r.text
    detail = r.json()["detail"]
    assert detail.startswith("ref_endpoint: field " + field) and "accepted:" in detail
    assert engine.engine_core.calls == []


def test_not_json_is_a_400(writable):
    r = app_for(FakeEngine()).put(PREFIX + "/scheduler/weights", content=b"gold=3",
                                  headers={"Content-Type": "application/json"})
    assert r.status_code == 400


def test_good_weights_reach_the_engine_core_as_the_settings_text(writable):
    engine = FakeEngine()
    r = app_for(engine).put(PREFIX + "/scheduler/weights", json={"weights": {"gold": 3, "free": "1/2"}})
    assert r.status_code == 200 and r.json()["weights"] == {"free": 0.5, "gold": 3.0}
    assert engine.engine_core.calls == [("ref_endpoint_set_weights", ("gold=3,free=1/2",))]
    r = app_for(FakeEngine(tenants=None)).put(PREFIX + "/scheduler/weights", json={"weights": {"gold": 3}})
    assert r.status_code == 409


def test_schema_of_every_response_is_in_openapi():
    schemas = app_for(FakeEngine()).get("/openapi.json").json()["components"]["schemas"]
    assert {"PluginsReport", "Process", "EntryPoint", "Tenants", "Tenant"} <= set(schemas)


def test_inactive_plugin_attaches_nothing():
    app = FastAPI()
    RefEndpointPlugin(active=False).attach_router(app)
    assert not [r for r in app.routes if getattr(r, "path", "").startswith(PREFIX)]


def test_table_has_a_row_per_process_and_names_unknown_allowlist_entries():
    report = {"processes": [_proc("front_end", 1), _proc("engine_core", 2), _proc("worker", 3, rank=0)]}
    lines = table(json.loads(json.dumps(report))).splitlines()
    assert lines[0].split() == ["process", "pid", "ref_x"]
    assert lines[2].split() == ["front_end", "1", "loaded"]
    assert lines[3].split() == ["engine_core", "2", "loaded", "+", "effect"]
    assert lines[4].split()[0] == "worker[0]"
    assert lines[-1] == "VLLM_PLUGINS names no installed entry point: ref_typo"
