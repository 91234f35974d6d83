"""`vllm serve` with the plugin, scraped every second by a real Prometheus while requests run.

One server boot for the whole module. What Prometheus stored must agree with what the OpenAI
client saw (requests completed, prompt and generated tokens, finish reasons) and with vLLM's
own counters; the example dashboard's and alert rules' queries must run on that data.
"""

from __future__ import annotations

import json
import random
import re
import string
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from vllm_ref_harness import tiny_llama
from vllm_ref_prometheus import PREFIX, exported_names
from vllm_ref_prometheus.testing import PrometheusServer, sample

# The dashboards and rules this plugin documents (the repository's examples/prometheus).
EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "prometheus"

pytestmark = pytest.mark.vllm
MAX_LEN = 512


@pytest.fixture(scope="module")
def stack(vllm_module):
    server = vllm_module.serve(
        tiny_llama(), plugins=["ref_prometheus"], timeout=600,
        # Without prefix caching every prompt token is computed, so the plugin's prefill
        # tokens must equal the prompt tokens the client was billed for.
        args=["--no-enable-prefix-caching", "--max-num-seqs", "8"],
        checks={"built": "vllm_ref_prometheus:status"})
    with PrometheusServer([f"127.0.0.1:{server.port}"]) as prom:
        # The server is up before Prometheus starts: wait for a scrape of the counters at 0, or
        # rate() over the load (the alert test) may see no increase at all.
        deadline = time.monotonic() + 30
        while not prom.query(f"{PREFIX}requests_finished_total") and time.monotonic() < deadline:
            time.sleep(0.5)
        yield server, prom


def _requests() -> list[dict]:
    reqs = [{"prompt": f"Request {i} asks about metrics", "max_tokens": 6 + 3 * i} for i in range(10)]
    reqs += [{"prompt": "Stop soon please", "max_tokens": 40, "stop": [" ", "e", "a"]} for _ in range(3)]
    # Chat requests close to the context window without max_tokens: they run to max_model_len.
    rnd = random.Random(0)
    for n in (85, 88):
        text = " ".join("".join(rnd.choice(string.ascii_lowercase) for _ in range(5)) for _ in range(n))
        reqs.append({"messages": [{"role": "user", "content": text}]})
    return reqs


@pytest.fixture(scope="module")
def load(stack):
    server, prom = stack
    client = server.client()

    def one(req: dict):
        api = client.chat.completions if "messages" in req else client.completions
        out = api.create(model=server.model, temperature=0, extra_body={"ignore_eos": True}, **req)
        return out.choices[0].finish_reason, out.usage.prompt_tokens, out.usage.completion_tokens

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(one, _requests()))
    expected: dict[str, float] = {}
    for reason, prompt, completion in results:
        if reason == "length":
            reason = "length_context" if prompt + completion >= MAX_LEN else "length_max_tokens"
        expected[reason] = expected.get(reason, 0) + 1
    # Wait until a scrape after the last request reached Prometheus.
    prom.wait_value(f"sum({PREFIX}requests_finished_total)", len(results), timeout=90)
    return results, expected


def test_prometheus_agrees_with_the_client(stack, load):
    server, prom = stack
    results, expected = load
    up = [t for t in prom.targets_up() if t["health"] == "up"]
    assert up, prom.targets_up()
    assert prom.value(f"sum({PREFIX}requests_finished_total)") == len(results)
    assert prom.value(f"sum({PREFIX}step_decode_tokens_sum)") == sum(r[2] for r in results)
    assert prom.value(f"sum({PREFIX}step_prefill_tokens_sum)") == sum(r[1] for r in results)
    by_reason = {r["metric"]["reason"]: float(r["value"][1])
                 for r in prom.query(f"sum by (reason) ({PREFIX}requests_finished_total)")}
    assert {k: v for k, v in by_reason.items() if v} == expected
    assert expected.get("length_context") == 2 and expected.get("length_max_tokens", 0) >= 10


def test_agrees_with_vllms_own_metrics(stack, load):
    _, prom = stack
    ours, vllms = f"sum({PREFIX}step_decode_tokens_sum)", "sum(vllm:generation_tokens_total)"
    assert prom.value(ours) == prom.value(vllms)
    ours, vllms = f"sum({PREFIX}requests_finished_total)", "sum(vllm:request_success_total)"
    assert prom.value(ours) == prom.value(vllms)


def test_per_step_distributions_were_recorded(stack, load):
    _, prom = stack
    steps = prom.value(f"sum({PREFIX}step_running_requests_count)")
    assert steps and steps > 10
    assert prom.value(f"sum({PREFIX}kv_cache_usage_ratio_count)") == steps
    assert prom.value(f"sum({PREFIX}step_duration_seconds_count)") > 0
    # Four clients at once: some steps batched more than one request.
    assert prom.value(f'sum({PREFIX}step_running_requests_bucket{{le="1.0"}})') < steps
    labels = prom.query(f"{PREFIX}step_decode_tokens_count")[0]["metric"]
    assert labels["engine"] == "0" and labels["model_name"] == str(tiny_llama())


def test_metrics_endpoint_has_both_families_without_collision(stack, load):
    server, _ = stack
    text = server.metrics()
    ours = set(re.findall(rf"^({PREFIX}\w+?)(?:{{| )", text, re.M))
    assert ours and ours <= exported_names() | {n.replace("_total", "_created") for n in exported_names()} | {
        n[: -len("_count")] + "_created" for n in exported_names() if n.endswith("_count")}
    assert f"# HELP {PREFIX}step_decode_tokens " in text
    assert sample(text, "vllm:generation_tokens_total") > 0  # vLLM's own logger is still there
    assert sample(text, f"{PREFIX}info") == 1


def test_loaded_only_in_the_front_end(stack, load):
    server, _ = stack
    report = server.wait_for_check("built", roles=("front_end", "engine_core"))
    report.assert_loaded("ref_prometheus", roles=("front_end",), group="vllm.stat_logger_plugins")
    report.assert_not_loaded("ref_prometheus", roles=("engine_core", "worker"))
    report.assert_check("built", True, roles=("front_end",))
    report.assert_check("built", False, roles=("engine_core", "worker"))


def _promql(expr: str) -> str:
    return expr.replace("$__rate_interval", "1m").replace("$model", ".*")


def test_dashboard_queries_return_data(stack, load):
    _, prom = stack
    dash = json.loads((EXAMPLES / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert len(exprs) >= 10
    # rate() needs two samples of a series inside its window: a series first scraped at the end
    # of the load has data one scrape interval later, so allow a few scrapes.
    deadline = time.monotonic() + 60  # ends at the first sample; generous for a loaded machine
    while (empty := [e for e in exprs if not prom.query(_promql(e))]) and time.monotonic() < deadline:
        time.sleep(1)
    assert not empty, f"dashboard queries without data after the load: {empty}"


def test_alert_rules_evaluate(stack, load):
    _, prom = stack
    rules = yaml.safe_load((EXAMPLES / "alerts.yml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    for e in exprs:
        prom.query(e)  # raises on any PromQL error
    # No stall, no saturation, and 2 of 15 requests hit the context window: only that one fires.
    assert not prom.query(exprs[0]) and not prom.query(exprs[1])
    # Its rate() needs two scrapes of the series after the load (as for the dashboard above).
    deadline = time.monotonic() + 60  # ends at the first sample; generous for a loaded machine
    while not prom.query(exprs[2]) and time.monotonic() < deadline:
        time.sleep(1)
    assert prom.query(exprs[2])
