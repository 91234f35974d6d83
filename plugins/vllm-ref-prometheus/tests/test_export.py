"""Own /metrics endpoint and Pushgateway pushes: they work, and failures never raise."""

import logging
import socket
import urllib.request

from prometheus_client import REGISTRY, Counter
from vllm_ref_harness import free_port
from vllm_ref_prometheus import export
from vllm_ref_prometheus.config import load_config
from vllm_ref_prometheus.testing import FakePushgateway, sample

_marker = Counter("vllm_ref_export_test_marker", "Test-only counter.", registry=REGISTRY)
_marker.inc(3)


def test_serves_the_registry_on_the_configured_address():
    port = free_port()
    assert export.serve("127.0.0.1", port)
    assert export.serve("127.0.0.1", port)  # idempotent: a second AsyncLLM does not re-bind
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    assert sample(text, "vllm_ref_export_test_marker_total") == 3


def test_port_in_use_logs_one_line_and_returns(caplog):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with caplog.at_level(logging.INFO, logger="vllm_ref.prometheus"):
            assert export.serve("127.0.0.1", port) is False
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1
    assert f"cannot serve /metrics on 127.0.0.1:{port}" in lines[0]
    assert "REF_PROMETHEUS_LISTEN" in lines[0] and "keeps running" in lines[0]


def test_pushes_to_a_pushgateway():
    with FakePushgateway() as gw:
        pusher = export.Pusher(gw.url, "refjob", interval=0.2)
        assert pusher.push_once()
    method, path, body = gw.pushes[0]
    assert method == "PUT"
    assert path.startswith("/metrics/job/refjob/instance/")
    assert sample(body, "vllm_ref_export_test_marker_total") == 3


def test_failing_push_logs_once_then_recovery_once(caplog):
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    pusher = export.Pusher(dead, "refjob", interval=0.2)
    with caplog.at_level(logging.INFO, logger="vllm_ref.prometheus"):
        assert [pusher.push_once() for _ in range(3)] == [False, False, False]
        with FakePushgateway(status=500) as gw500:
            pusher.url = gw500.url
            assert pusher.push_once() is False  # an HTTP error is a failure too, still no new line
        with FakePushgateway() as gw:
            pusher.url = gw.url
            assert pusher.push_once() and pusher.push_once()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"ref_prometheus: push to {dead} failed") and "keeps running" in lines[0]
    assert "work again" in lines[1]
    assert pusher.pushes == 2


def test_pusher_thread_pushes_periodically_and_on_stop():
    with FakePushgateway() as gw:
        pusher = export.Pusher(gw.url, "refjob", interval=0.1).start()
        import time
        deadline = time.monotonic() + 10
        while len(gw.pushes) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(gw.pushes) >= 2
        n = len(gw.pushes)
        pusher.stop()
        assert len(gw.pushes) >= n + 1  # the final push
        pusher.stop()  # idempotent


def test_start_follows_config_once_per_process():
    port = free_port()
    cfg = load_config({"REF_PROMETHEUS_LISTEN": str(port)})
    export.start(cfg)
    export.start(cfg)
    assert ("127.0.0.1", port) in export._servers
