"""pytest fixtures of the harness (registered through the `pytest11` entry point).

- `tiny_model`: path of the default tiny Llama checkpoint (made once, cached).
- `vllm`: a factory: `vllm.run(...)` boots an offline/AsyncLLM engine (see run_engine),
  `vllm.serve(...)` returns a started VllmServer. Everything it started is torn down at the
  end of the test, and the test fails if any vLLM process survived.
- `vllm_module`: the same factory for module-scoped fixtures (one boot shared by a module's
  tests), torn down at the end of the module.
Process handling switches on with the first harness fixture a test uses (or the first test
marked `vllm`), never at import: from then on SIGTERM ends the session like Ctrl-C (teardown
runs), and at the end of the session any process still carrying this session's tag is killed
and reported, so an interrupted run leaves nothing behind. A session that never boots vLLM
(any pytest run in an environment that merely has the harness installed) is left as it was.
With `--matrix-results DIR` (or REF_MATRIX_RESULTS) the session's outcome is written as one cell
of the compatibility matrix (see vllm_ref_harness.matrix).
Under pytest-xdist (`-n 2`), no two tests marked `exclusive` run at the same time (a flock the
workers share): two local Ray clusters on one machine never start side by side.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from . import procs
from .matrix import RESULTS_ENV, CellRecorder
from .ray_cluster import RayCluster
from .runner import EngineRun, VllmServer, run_engine
from .tinymodel import tiny_llama


class VllmFactory:
    def __init__(self, tmp_path: Path):
        self._tmp = tmp_path
        self._servers: list[VllmServer | RayCluster] = []
        self._n = itertools.count(1)  # next() is atomic: boots may start from several threads

    def _dir(self) -> Path:
        return self._tmp / f"vllm-{next(self._n)}"

    def run(self, model: Any, **kwargs: Any) -> EngineRun:
        kwargs.setdefault("run_dir", self._dir())
        return run_engine(model, **kwargs)

    def serve(self, model: Any, **kwargs: Any) -> VllmServer:
        kwargs.setdefault("run_dir", self._dir())
        server = VllmServer(model, **kwargs)
        self._servers.append(server)
        return server.start()

    def ray_cluster(self, **kwargs: Any) -> RayCluster:
        """A started local Ray cluster; boots share its run folder (and so its probe)."""
        cluster = RayCluster(self._dir(), **kwargs)
        self._servers.append(cluster)
        return cluster.start()

    def close(self) -> None:
        errors = []
        for s in reversed(self._servers):
            try:
                s.stop()
            except Exception as exc:  # keep stopping the others
                errors.append(str(exc))
        self._servers.clear()
        if errors:
            pytest.fail("\n".join(errors))


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    _activate()
    return tiny_llama()


@pytest.fixture
def vllm(tmp_path: Path) -> Iterator[VllmFactory]:
    _activate()
    factory = VllmFactory(tmp_path)
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture(scope="module")
def vllm_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmFactory]:
    _activate()
    factory = VllmFactory(tmp_path_factory.mktemp("vllm-module"))
    try:
        yield factory
    finally:
        factory.close()


_active = False  # process handling is on (see _activate)
_installed = False  # our SIGTERM handler is installed
_host_sigterm: Any = None  # the handler the host project (or Python) had before ours


def _on_sigterm(signum: int, frame: Any) -> None:
    # Turn SIGTERM (CI time-outs, `timeout`, kill) into the same path as Ctrl-C, so fixture
    # teardown runs and the session reaper below still gets its turn. A handler the host
    # project installed runs first: ours chains to it instead of replacing it.
    if callable(_host_sigterm):
        _host_sigterm(signum, frame)
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("vllm-ref-harness").addoption(
        "--matrix-results", default=os.environ.get(RESULTS_ENV) or None, metavar="DIR",
        help="write this session's result (project, vLLM version, passed/failed tests) to "
             "DIR/<project>@<vllm>.json, one cell of the compatibility matrix")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "vllm: boots a real vLLM engine (slow)")
    config.addinivalue_line("markers", "exclusive: under pytest-xdist, never beside another exclusive test")
    results = config.getoption("matrix_results", None)
    if results:
        config.pluginmanager.register(CellRecorder(config, Path(results)), "vllm-ref-matrix-cell")


def _activate() -> None:
    """Switch this session's process handling on (once): the SIGTERM handler now, the reaper
    at the end of the session."""
    global _active, _installed, _host_sigterm
    if _active:
        return
    _active = True
    if sys.platform == "win32":
        return
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:
        return  # not in the main thread
    _installed = True
    _host_sigterm = previous


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # A test that boots vLLM without the fixtures (run_engine, VllmServer directly) says so
    # with the marker.
    if item.get_closest_marker("vllm") is not None:
        _activate()


@contextlib.contextmanager
def _exclusive_turn(item: pytest.Item) -> Iterator[None]:
    """Under pytest-xdist, one `exclusive` test at a time across the workers (a flock); other
    tests are not held up. The run is xdist's own worker input, not an environment variable: a
    pytest a test starts inherits the environment, and must not wait for its own parent."""
    run = getattr(item.config, "workerinput", {}).get("testrunuid")
    if not run or item.get_closest_marker("exclusive") is None:
        yield
        return
    with open(Path(tempfile.gettempdir()) / f"vllm-ref-xdist-{run}.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    # Setup, call and teardown all inside the turn: a module's boot happens in its first test's
    # setup, and its teardown in its last test's.
    with _exclusive_turn(item):
        yield


def _restore_sigterm() -> None:
    global _installed
    if not _installed:
        return
    _installed = False
    try:
        # None: the handler was not installed from Python; the default is the closest to it.
        signal.signal(signal.SIGTERM, signal.SIG_DFL if _host_sigterm is None else _host_sigterm)
    except (ValueError, TypeError):
        pass


def pytest_unconfigure(config: pytest.Config) -> None:
    global _active
    if not _active:
        return
    _active = False
    _restore_sigterm()
    leftovers = procs.reap(procs.SESSION_TAG, grace=5)
    if leftovers:
        sys.stderr.write("vllm-ref-harness: killed vLLM processes left at session end: "
                         + "; ".join(leftovers) + "\n")
