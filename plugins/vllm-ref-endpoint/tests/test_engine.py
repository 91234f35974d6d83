"""Real `python -m vllm.entrypoints.openai.api_server` with the endpoint plugin (three boots):

1. TP=1 with ref_scheduler, the scheduler tests' admission recorder, --api-key and writes
   enabled: the key is enforced as on vLLM's own routes, the report agrees with the harness's
   probe process by process, and a weight change over HTTP changes the admission order.
2. TP=2 with the endpoint alone: both workers report; the scheduler routes say 409; writes 403.
3. VLLM_PLUGINS unset: vLLM does not load the plugin, warns, and the routes are 404.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import openai
import pytest
import requests
from vllm_ref_scheduler.testing import recorder_site, run_contended

pytestmark = pytest.mark.vllm

KEY = "sekret-key"
CHECKS = {"endpoint": "vllm_ref_endpoint:status", "scheduler": "vllm_ref_scheduler:status"}
ROLES = ("front_end", "engine_core", "worker")
WORK = [("f1", "free"), ("f2", "free"), ("f3", "free"), ("g1", "gold"), ("g2", "gold"), ("g3", "gold"),
        ("g4", "gold")]


def get(server, path, **kw):
    return requests.get(server.url + path, headers=kw.pop("headers", server.headers()), timeout=120, **kw)


@pytest.fixture(scope="module")
def server(vllm_module, tiny_model, tmp_path_factory):
    # The scheduler's own test tooling: the weight route is checked the way the scheduler's
    # tests check the policy, from the engine core's record of its admissions.
    site = recorder_site(tmp_path_factory.mktemp("recorder-site"))
    record = tmp_path_factory.mktemp("record") / "sched-record.jsonl"
    s = vllm_module.serve(
        tiny_model, plugins=["ref_endpoint", "ref_scheduler", "ref_sched_record"], checks=CHECKS, timeout=600,
        args=["--api-key", KEY, "--max-num-seqs", "1"],
        env={"PYTHONPATH": str(site), "REF_SCHED_RECORD": str(record), "REF_ENDPOINT_WRITE": "1",
             "VLLM_SERVER_DEV_MODE": "1"})  # /pause and /resume for the workload (run_contended)
    s.record = record
    return s


def test_routes_obey_the_api_key_like_vllms_own(server):
    for path in ("/v1/ref/plugins", "/v1/ref/scheduler/tenants", "/v1/models"):
        assert get(server, path, headers={}).status_code == 401, path
        assert get(server, path, headers={"Authorization": "Bearer wrong"}).status_code == 401, path
        assert get(server, path).status_code == 200, path
    bad = requests.put(server.url + "/v1/ref/scheduler/weights", json={"weights": {"gold": 3}}, timeout=60)
    assert bad.status_code == 401
    # The real OpenAI client with the key, beside the plugin's routes.
    assert [m.id for m in server.client().models.list()] == [server.model]
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=server.url + "/v1", api_key="wrong").models.list()


def _agrees_with_probe(server, report):
    """Each process of the report is the probe's process with that pid, in the same role."""
    probe = server.wait_for_check("endpoint", ROLES, timeout=120, until=lambda s: s["effect"])
    seen = {r.pid: r for r in probe if r.role in ROLES}
    got = {p["pid"]: p for p in report["processes"]}
    assert set(got) == set(seen), (report, probe.describe())
    for pid, p in got.items():
        assert (p["role"], p["rank"]) == (seen[pid].role, seen[pid].rank)
        ours = {(e["group"], e["name"]): e for e in p["entry_points"]}
        # What the probe saw loaded there, the report says is imported there.
        for group, names in seen[pid].plugins.items():
            for name, state in names.items():
                if state in ("loaded", "called") and (group, name) in ours:
                    assert ours[(group, name)]["imported"], (pid, group, name)
        assert ours[("vllm.general_plugins", "ref_endpoint")]["status"]["effect"] is True
        assert p["vllm_version"] == seen[pid].vllm_version
    return got


def test_plugins_report_agrees_with_the_probe_process_by_process(server):
    report = get(server, "/v1/ref/plugins").json()
    procs = _agrees_with_probe(server, report)
    by_role = {p["role"]: p for p in procs.values()}
    sched = {r: next(e for e in by_role[r]["entry_points"] if e["name"] == "ref_scheduler") for r in ROLES}
    assert sched["engine_core"]["status"]["scheduler"] and sched["front_end"]["status"]["validation"]
    assert not sched["worker"]["status"]["effect"]
    front = by_role["front_end"]
    assert front["vllm_plugins"] == ["ref_endpoint", "ref_scheduler", "ref_sched_record"]
    assert front["unknown_names"] == []
    filtered = {e["name"] for e in front["entry_points"] if e["filtered"]}
    assert {"ref_model", "ref_prometheus"} <= filtered
    endpoint = next(e for e in front["entry_points"] if e["group"] == "vllm.endpoint_plugins")
    assert endpoint["status"]["routes"] and "REF_ENDPOINT_WRITE" in endpoint["settings_set"]
    assert "1" not in repr(endpoint["settings_set"])  # names, never values


def test_the_table_command_reads_the_live_server(server):
    out = subprocess.run([sys.executable, "-m", "vllm_ref_endpoint", server.url, "--api-key", KEY],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rows = out.stdout.splitlines()
    assert rows[0].split()[:3] == ["process", "pid", "ref_endpoint"]
    assert [r.split()[0] for r in rows[2:5]] == ["front_end", "engine_core", "worker[0]"]
    denied = subprocess.run([sys.executable, "-m", "vllm_ref_endpoint", server.url],
                            capture_output=True, text=True, timeout=120, env={**os.environ, "VLLM_API_KEY": ""})
    assert denied.returncode == 1 and "HTTP 401" in denied.stderr


def test_a_weight_change_over_http_changes_the_admission_order(server):
    put = lambda body: requests.put(server.url + "/v1/ref/scheduler/weights", json=body,  # noqa: E731
                                    headers=server.headers(), timeout=120)
    assert run_contended(server, WORK) == ["f1", "g1", "f2", "g2", "f3", "g3", "g4"]  # equal shares
    bad = put({"weights": {"gold": -3}})
    assert bad.status_code == 400 and "ref_endpoint: field 'weights.gold'" in bad.text and "accepted" in bad.text
    ok = put({"weights": {"gold": 3}})
    assert ok.status_code == 200 and ok.json()["weights"] == {"gold": 3.0}
    assert run_contended(server, WORK) == ["f1", "g1", "g2", "g3", "f2", "g4", "f3"]  # gold weighs 3
    tenants = get(server, "/v1/ref/scheduler/tenants").json()
    assert tenants["weights"] == {"gold": 3.0} and tenants["tenants"]["gold"]["weight"] == 3.0
    assert tenants["tenants"]["free"]["virtual_service"] > 0 and tenants["tenants"]["free"]["waiting"] == 0


# Hostile PUT bodies (issue 27): the three extreme weights first, then malformed bodies.
HOSTILE_BODIES = [
    b'{"weights": {"gold": ' + b"1" * 400 + b"}}", b'{"weights": {"gold": "' + b"1" * 400 + b'"}}',
    b'{"weights": {"gold": 1e-320}}', b'{"weights": {"gold": 1e308}}',
    b'{"weights": {"gold": "1/' + b"9" * 400 + b'"}}',
    b'{"weights": {"gold": "' + b"9" * 4000 + b'"}}', b'{"weights": {"gold": "1e999999999"}}',
    b'{"weights": {"gold": NaN}}', b'{"weights": {"gold": Infinity}}', b'{"weights": {"gold": ' + b"9" * 5000 + b"}}",
    b'{"weights": {"gold": "\\ud800"}}', b'{"weights": {"\\ud800": 1}}', b'{"weights": {"gold": [[[[1]]]]}}',
    b'{"weights": {"gold": {"x": 1}}}', b'{"weights": {"gold": null}}', b'{"weights": {"gold": 0.0009}}',
    b'{"weights": {"gold": 1000001}}', b'{"weights": {"gold": "1/1000001"}}', b'{"weights": {"gold": 3, "gold2": -1}}',
    b'{"weights": {' + b",".join(b'"t%d": 1' % i for i in range(300)) + b"}}",
    b'{"weights": {"' + b"x" * 100_000 + b'": 1}}', b"[" * 100_000 + b"]" * 100_000, b"\xff\xfe", b"", b"null",
]
HOSTILE_TENANTS = [42, 1e308, "", "x" * 65, "two words", "\ud800", ["A"], "-lead", "a" * 100_000]


def test_hostile_requests_are_4xx_naming_the_plugin_and_change_no_state(server):
    """Issue 27 against the real server: every refusal is a 400 naming the plugin, nothing is a
    5xx, the policy's state reads the same afterwards, and the server still serves and weighs."""
    headers = {**server.headers(), "Content-Type": "application/json"}
    before = get(server, "/v1/ref/scheduler/tenants").json()
    for body in HOSTILE_BODIES:
        r = requests.put(server.url + "/v1/ref/scheduler/weights", data=body, headers=headers, timeout=120)
        # vLLM's server wraps an HTTPException's detail as {"error": {"message": ...}}.
        assert r.status_code == 400 and r.json()["error"]["message"].startswith("ref_endpoint: field 'weights"), \
            (body[:80], r.status_code, r.text[:300])
    for tenant in HOSTILE_TENANTS:  # json.dumps: a lone surrogate travels as its \\u escape
        body = json.dumps({"model": server.model, "prompt": "hi", "max_tokens": 2,
                           "vllm_xargs": {"ref_tenant": tenant}}).encode()
        r = requests.post(server.url + "/v1/completions", data=body, headers=headers, timeout=120)
        assert r.status_code == 400 and "ref_scheduler" in r.text and "ref_tenant" in r.text, \
            (repr(tenant)[:80], r.status_code, r.text[:300])
    client = server.client(max_retries=0)
    after = get(server, "/v1/ref/scheduler/tenants")
    assert after.status_code == 200 and after.json() == before  # no refused request left a trace
    ok = client.completions.create(model=server.model, prompt="hi", max_tokens=2,
                                   extra_body={"vllm_xargs": {"ref_tenant": "fuzz-check"}})
    assert ok.choices[0].finish_reason == "length"
    assert get(server, "/v1/ref/scheduler/tenants").json()["tenants"]["fuzz-check"]["virtual_service"] > 0


def test_tensor_parallel_2_every_worker_reports_and_inactive_routes_say_why(vllm, tiny_model):
    s = vllm.serve(tiny_model, plugins=["ref_endpoint"], checks=CHECKS, timeout=600,
                   args=["--tensor-parallel-size", "2"])
    report = get(s, "/v1/ref/plugins").json()
    procs = _agrees_with_probe(s, report)
    assert sorted(p["rank"] for p in procs.values() if p["role"] == "worker") == [0, 1]
    tenants = get(s, "/v1/ref/scheduler/tenants")
    assert tenants.status_code == 409 and "ref_scheduler" in tenants.text and "not active" in tenants.text
    put = requests.put(s.url + "/v1/ref/scheduler/weights", json={"weights": {"gold": 3}}, timeout=60)
    assert put.status_code == 403 and "REF_ENDPOINT_WRITE=1" in put.text


def test_without_vllm_plugins_vllm_skips_the_plugin_and_warns(vllm, tiny_model):
    s = vllm.serve(tiny_model, plugins=None, timeout=600)
    assert get(s, "/v1/ref/plugins").status_code == 404
    assert "Found endpoint plugin(s)" in s.log and "ref_endpoint" in s.log
