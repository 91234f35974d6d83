"""The probe reports whatever way a process leaves (no vLLM needed: a fake `vllm` package).

Each case runs a short Python process under the probe with a poll period far longer than the
process lives, so only the probe's fixed points (after a plugin loads and registers, at exit,
on os._exit, on SIGTERM) can report; the last case is the cause of the missing front-end
reports: a module half-way through its import in another thread, which killed the old
probe's thread.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from vllm_ref_harness import ProbeReport
from vllm_ref_harness.runner import PROBE_SITE

CHECK = {"c": "probe_fake_plugin:status"}
PREAMBLE = """
import os, signal, sys, time
import vllm
from importlib.metadata import entry_points
for ep in entry_points(group="vllm.general_plugins", name="fake"):
    ep.load()()
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fake vLLM and a general plugin registered through a real entry point."""
    root = tmp_path_factory.mktemp("fake-site")
    (root / "vllm").mkdir()
    (root / "vllm" / "__init__.py").write_text('__version__ = "0.0.0+fake"\n')
    (root / "probe_fake_plugin.py").write_text(textwrap.dedent("""
        REGISTERED = []

        def register():
            REGISTERED.append("ok")

        def status():
            return {"effect": bool(REGISTERED)}
    """))
    info = root / "probe_fake_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: probe-fake-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[vllm.general_plugins]\nfake = probe_fake_plugin:register\n")
    return root


def run(site: Path, tmp_path: Path, body: str, period: str = "30") -> tuple[int, ProbeReport, str]:
    probe = tmp_path / "probe"
    probe.mkdir()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([PROBE_SITE, str(site)]), REF_PROBE_DIR=str(probe),
               REF_PROBE_CHECKS=";".join(f"{k}={v}" for k, v in CHECK.items()), REF_PROBE_PERIOD=period)
    p = subprocess.run([sys.executable, "-c", textwrap.dedent(body)], env=env, capture_output=True,
                       text=True, timeout=60)
    return p.returncode, ProbeReport.read(probe), p.stderr


def only(report: ProbeReport):
    assert len(report.records) == 1, report.describe()
    return report.records[0]


@pytest.mark.parametrize("way_out, code, ended", [
    ("pass", 0, "exit"),
    ("sys.exit(3)", 3, "exit"),
    ("os._exit(4)", 4, "os._exit(4)"),
    ("os.kill(os.getpid(), signal.SIGTERM); time.sleep(30)", -15, "SIGTERM"),
], ids=["normal-exit", "sys-exit", "os-exit", "sigterm"])
def test_every_way_out_reports_the_check_and_how_it_ended(site, tmp_path, way_out, code, ended) -> None:
    rc, report, err = run(site, tmp_path, PREAMBLE + way_out + "\n")
    assert rc == code, err
    rec = only(report)
    assert rec.status("fake") == "called"
    assert rec.checks["c"] == {"effect": True}, rec.summary()
    assert rec.ended == ended, rec.summary()


def test_a_killed_process_keeps_what_it_reported_and_says_it_left_no_word(site, tmp_path) -> None:
    rc, report, err = run(site, tmp_path, PREAMBLE + "os.kill(os.getpid(), signal.SIGKILL)\n")
    assert rc == -9, err
    rec = only(report)
    # Evaluated right after register() returned, before any poll could run.
    assert rec.checks["c"] == {"effect": True}, rec.summary()
    assert rec.ended is None and "(no exit recorded)" in rec.summary()


def test_a_process_that_never_loads_the_plugin_still_reports_at_exit(site, tmp_path) -> None:
    # vLLM imported, the plugin never loaded (filtered, say): the exit round imports the check's
    # module in the main thread, as the only thread left, and reports its value.
    rc, report, err = run(site, tmp_path, "import vllm\n")
    assert rc == 0, err
    rec = only(report)
    assert rec.checks["c"] == {"effect": False} and rec.ended == "exit", rec.summary()


def test_a_process_that_never_touches_vllm_reports_nothing(site, tmp_path) -> None:
    rc, report, err = run(site, tmp_path, "import json, os; os._exit(0)\n")
    assert rc == 0, err
    assert report.records == []


def test_half_imported_modules_neither_kill_the_poller_nor_get_imported_by_it(site, tmp_path) -> None:
    """The cause of the missing reports: `multiprocessing` (or a check's module) half-way
    through its import in the main thread while the poller runs. The old probe's thread called
    `multiprocessing.current_process()` on the half-imported module, died of the
    AttributeError, and reported nothing more."""
    body = """
    import sys, threading, time, types
    import vllm
    from importlib.machinery import ModuleSpec

    def half_imported(name):
        spec = ModuleSpec(name, None)
        spec._initializing = True
        module = types.ModuleType(name)
        module.__spec__ = spec
        return module

    # What another thread's `import multiprocessing` looks like before its body has finished.
    real = sys.modules.pop("multiprocessing", None)
    sys.modules["multiprocessing"] = half_imported("multiprocessing")
    # A check's module in the same state: the poller must wait for it, not import it.
    sys.modules["probe_fake_plugin"] = half_imported("probe_fake_plugin")
    time.sleep(0.5)  # many poll rounds (period 0.02 s) see both half-imported
    del sys.modules["probe_fake_plugin"]
    if real is not None:
        sys.modules["multiprocessing"] = real
    else:
        del sys.modules["multiprocessing"]
    import probe_fake_plugin
    probe_fake_plugin.REGISTERED.append("by hand")
    # The poller, still alive, sees the effect: wait for its line (not a fixed sleep, which a
    # loaded machine can outlast), then die with no exit round, so only the poller can have reported.
    mine = os.path.join(os.environ["REF_PROBE_DIR"], f"{os.getpid()}.jsonl")
    deadline = time.monotonic() + 30
    while '"effect": true' not in open(mine).read() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(os.getpid(), signal.SIGKILL)
    """
    rc, report, err = run(site, tmp_path, "import os, signal\n" + textwrap.dedent(body), period="0.02")
    assert rc == -9, err
    rec = only(report)
    assert rec.checks["c"] == {"effect": True}, rec.summary() + err
    assert "(probe)" not in rec.errors and "Exception in thread" not in err, err
