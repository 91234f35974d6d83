"""The plugin inside an application's own AsyncLLM: own /metrics endpoint, Pushgateway pushes,
and the failure paths (busy port, dead gateway, bad setting) on a real engine.

Three engine boots: one healthy (scraped by a real Prometheus, pushing to a recording fake
gateway), one with a busy port and a dead gateway, one with an invalid setting.
"""

from __future__ import annotations

import socket

import pytest
from vllm_ref_harness import free_port, tiny_llama
from vllm_ref_prometheus import PREFIX
from vllm_ref_prometheus.testing import FakePushgateway, PrometheusServer, sample

pytestmark = pytest.mark.vllm
REQUESTS = [{"prompt": f"Embedded request {i}", "sampling": {"max_tokens": 4 + 2 * i}} for i in range(8)]
SAMPLING = {"temperature": 0.0, "ignore_eos": True}


def test_own_endpoint_scraped_by_prometheus_and_pushes(vllm):
    port = free_port()
    with PrometheusServer([f"127.0.0.1:{port}"]) as prom, FakePushgateway() as gw:
        run = vllm.run(
            tiny_llama(), mode="async", requests=REQUESTS, sampling=SAMPLING, plugins=["ref_prometheus"],
            call="vllm_ref_prometheus.testing:read_own_endpoint", checks={"built": "vllm_ref_prometheus:status"},
            env={"REF_PROMETHEUS_LISTEN": f"127.0.0.1:{port}",
                 "REF_PROMETHEUS_PUSHGATEWAY": gw.url, "REF_PROMETHEUS_PUSH_INTERVAL": "0.5",
                 "REF_PROMETHEUS_JOB": "embedded-app", "REFPROM_HOLD_S": "4"},
            timeout=600)
        generated = sum(len(o["token_ids"]) for o in run.outputs)
        assert generated == sum(4 + 2 * i for i in range(8))

        # The endpoint, read by the application itself after generation.
        text = run.extra["metrics"]
        assert sample(text, f"{PREFIX}requests_finished_total") == len(REQUESTS)
        assert sample(text, f"{PREFIX}requests_finished_total", reason="length_max_tokens") == len(REQUESTS)
        assert sample(text, f"{PREFIX}step_decode_tokens_sum") == generated
        assert sample(text, "vllm:generation_tokens_total") == generated  # vLLM's metrics come along

        # Prometheus scraped it while the engine lived (the target is gone now: look back).
        total = prom.value(f"sum(max_over_time({PREFIX}requests_finished_total[5m]))")
        assert total == len(REQUESTS), prom.log[-2000:]
        assert prom.value(f"sum(max_over_time({PREFIX}step_decode_tokens_sum[5m]))") == generated

    # Pushes: periodic ones while running, and a last one at exit with the final numbers.
    assert len(gw.pushes) >= 2
    method, path, body = gw.pushes[-1]
    assert method == "PUT" and path.startswith("/metrics/job/embedded-app/instance/")
    assert sample(body, f"{PREFIX}requests_finished_total") == len(REQUESTS)
    assert sample(body, f"{PREFIX}step_decode_tokens_sum") == generated
    run.report.assert_check("built", True, roles=("front_end",))
    run.report.assert_loaded("ref_prometheus", roles=("front_end",))


def test_busy_port_and_dead_gateway_do_not_stop_the_engine(vllm):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        dead = f"http://127.0.0.1:{free_port()}"
        run = vllm.run(
            tiny_llama(), mode="async", requests=REQUESTS, sampling=SAMPLING, plugins=["ref_prometheus"],
            env={"REF_PROMETHEUS_LISTEN": f"127.0.0.1:{port}",
                 "REF_PROMETHEUS_PUSHGATEWAY": dead, "REF_PROMETHEUS_PUSH_INTERVAL": "0.2"},
            timeout=600)
    assert [len(o["token_ids"]) for o in run.outputs] == [4 + 2 * i for i in range(8)]
    serve_errors = [ln for ln in run.log.splitlines() if "ref_prometheus: cannot serve /metrics" in ln]
    push_errors = [ln for ln in run.log.splitlines() if f"ref_prometheus: push to {dead} failed" in ln]
    assert len(serve_errors) == 1, run.log[-3000:]
    assert len(push_errors) == 1, run.log[-3000:]
    assert "keeps running" in serve_errors[0] and "keeps running" in push_errors[0]


def test_invalid_setting_fails_start_up_with_a_clear_error(vllm):
    run = vllm.run(tiny_llama(), mode="async", requests=REQUESTS[:1], plugins=["ref_prometheus"],
                   env={"REF_PROMETHEUS_LISTEN": "everywhere"}, timeout=600, expect_failure=True)
    assert not run.outputs
    assert "ref_prometheus: REF_PROMETHEUS_LISTEN='everywhere' is invalid" in run.extra["error"]
    assert "accepted values: PORT or HOST:PORT" in run.extra["error"]
