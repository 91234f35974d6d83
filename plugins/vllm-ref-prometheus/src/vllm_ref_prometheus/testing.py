"""Test tooling for vllm-ref-prometheus, imported by name by this package's tests. Needs the
`test` extra (`pip install vllm-ref-prometheus[test]`) and, for PrometheusServer, Debian's
`prometheus` binary; nothing at runtime imports it.

- PrometheusServer: a real Prometheus server on loopback; FakePushgateway: a recording fake.
- read_own_endpoint: a harness `call` hook run inside an embedded AsyncLLM.
"""

from __future__ import annotations

import asyncio
import http.server
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import requests
from vllm_ref_harness import free_port, metric_sum


class PrometheusServer:
    """`prometheus` scraping `targets` every second, in its own process group, always killed."""

    def __init__(self, targets: list[str], scrape_interval: str = "1s"):
        binary = shutil.which("prometheus")
        if binary is None:
            raise RuntimeError("the `prometheus` binary is missing: apt-get install prometheus "
                               "(scripts/install.sh does it)")
        self.dir = Path(tempfile.mkdtemp(prefix="refprom-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        targets_yaml = ", ".join(f"'{t}'" for t in targets)
        (self.dir / "prometheus.yml").write_text(
            f"global:\n  scrape_interval: {scrape_interval}\n  evaluation_interval: {scrape_interval}\n"
            f"scrape_configs:\n  - job_name: vllm\n    static_configs:\n      - targets: [{targets_yaml}]\n")
        self.cmd = [binary, f"--config.file={self.dir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={self.dir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}"]
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> PrometheusServer:
        self._log = open(self.dir / "prometheus.log", "wb")
        self.proc = subprocess.Popen(self.cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout: float = 60) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.proc.returncode}:\n{self.log}")
            try:
                if requests.get(self.url + "/-/ready", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"prometheus not ready after {timeout}s:\n{self.log}")

    @property
    def log(self) -> str:
        return (self.dir / "prometheus.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=15)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=15)
        if hasattr(self, "_log"):
            self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Instant-query result vector (raises on a PromQL error)."""
        r = requests.get(self.url + "/api/v1/query", params={"query": promql}, timeout=10)
        body = r.json()
        if body.get("status") != "success":
            raise AssertionError(f"PromQL {promql!r} failed: {body}")
        return body["data"]["result"]

    def value(self, promql: str) -> float | None:
        """The single value of a scalar-like query, None when the vector is empty."""
        result = self.query(promql)
        if not result:
            return None
        assert len(result) == 1, f"{promql!r} returned {len(result)} series: {result}"
        return float(result[0]["value"][1])

    def wait_value(self, promql: str, expected: float, timeout: float = 60) -> float | None:
        """Poll until `promql` equals `expected` (scrapes lag the load by up to a few seconds)."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.value(promql)
            if value == expected:
                return value
            time.sleep(0.5)
        return value

    def targets_up(self) -> list[dict[str, Any]]:
        return requests.get(self.url + "/api/v1/targets", timeout=10).json()["data"]["activeTargets"]


class FakePushgateway:
    """Accepts Pushgateway PUT/POST requests on loopback and keeps every body (or answers 500)."""

    def __init__(self, status: int = 200):
        pushes: list[tuple[str, str, str]] = []
        self.pushes = pushes

        class Handler(http.server.BaseHTTPRequestHandler):
            def _record(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                pushes.append((self.command, self.path, body))
                self.send_response(status)
                self.end_headers()

            do_PUT = do_POST = _record

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakePushgateway:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# Sums of exposition samples: the harness's metric_sum, under the name these tests use.
sample = metric_sum


# --- run inside vLLM processes by the harness (`call=`) -----------------------------------------

async def read_own_endpoint(engine: Any) -> dict[str, Any]:
    """After generation in an embedded AsyncLLM: read the plugin's own /metrics endpoint, then
    stay up long enough for a 1 s Prometheus scrape to see the final numbers."""
    url = f"http://{os.environ['REF_PROMETHEUS_LISTEN']}/metrics"
    text = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=10).read().decode())
    await asyncio.sleep(float(os.environ.get("REFPROM_HOLD_S", "4")))
    return {"metrics": text, "t": time.time()}
