"""Getting the metrics out of an embedded AsyncLLM: an own /metrics endpoint and/or pushes.

Under `vllm serve` neither is needed (the server's /metrics reads the same registry). Both are
best effort: a busy port or an unreachable Pushgateway logs one line and the engine keeps
serving. Each is started at most once per process, however many loggers are created.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import threading

from prometheus_client import REGISTRY, CollectorRegistry, push_to_gateway, start_http_server

from .config import LISTEN_ENV, PUSHGATEWAY_ENV, Config

logger = logging.getLogger("vllm_ref.prometheus")
_lock = threading.Lock()
_servers: dict[tuple[str, int], object] = {}
_pushers: dict[tuple[str, str], Pusher] = {}


def registry() -> CollectorRegistry:
    """The registry to expose: the process's default one, or the multi-process view.

    vLLM switches prometheus_client to multi-process files when it runs several API servers
    (PROMETHEUS_MULTIPROC_DIR); then only a MultiProcessCollector sees every process.
    """
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        reg = CollectorRegistry()
        multiprocess.MultiProcessCollector(reg)
        return reg
    return REGISTRY


def serve(host: str, port: int) -> bool:
    """Serve /metrics on host:port in a daemon thread; False (and one log line) if it cannot."""
    with _lock:
        if (host, port) in _servers:
            return True
        try:
            server, _thread = start_http_server(port, addr=host, registry=registry())
        except OSError as exc:
            logger.error("ref_prometheus: cannot serve /metrics on %s:%d (%s, set by %s); the engine "
                         "keeps running without this endpoint.", host, port, exc, LISTEN_ENV)
            return False
        _servers[(host, port)] = server
        logger.info("ref_prometheus: serving /metrics on http://%s:%d/metrics", host, port)
        return True


class Pusher:
    """Pushes the registry to a Pushgateway every `interval` seconds from a daemon thread."""

    def __init__(self, url: str, job: str, interval: float):
        self.url, self.job, self.interval = url, job, interval
        self.grouping = {"instance": f"{socket.gethostname()}:{os.getpid()}"}
        self.pushes = 0
        self.failing = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="ref-prometheus-push", daemon=True)

    def start(self) -> Pusher:
        self._thread.start()
        atexit.register(self.stop)
        return self

    def push_once(self) -> bool:
        try:
            push_to_gateway(self.url, job=self.job, registry=registry(), grouping_key=self.grouping,
                            timeout=min(10.0, self.interval * 2))
        except Exception as exc:
            # One line when pushes start failing, one when they recover: a dead gateway must
            # not flood the log every interval.
            if not self.failing:
                self.failing = True
                logger.error("ref_prometheus: push to %s failed (%s, set by %s); the engine keeps "
                             "running and pushes are retried every %gs.", self.url, exc, PUSHGATEWAY_ENV,
                             self.interval)
            return False
        if self.failing:
            self.failing = False
            logger.info("ref_prometheus: pushes to %s work again.", self.url)
        self.pushes += 1
        return True

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.push_once()

    def stop(self) -> None:
        """Stop the thread and push once more, so a short job's last numbers arrive."""
        if not self._stop.is_set():
            self._stop.set()
            self.push_once()


def start(config: Config) -> None:
    """Start what `config` asks for (idempotent per process)."""
    if config.listen is not None:
        serve(*config.listen)
    if config.pushgateway is not None:
        with _lock:
            key = (config.pushgateway, config.job)
            if key not in _pushers:
                _pushers[key] = Pusher(config.pushgateway, config.job, config.push_interval).start()
