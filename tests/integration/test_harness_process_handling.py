"""The harness's process handling (SIGTERM handler, session reaper) switches on only in a pytest
session that uses a harness fixture or a test marked `vllm`: a session that merely has the
harness installed is left as it was. Each case is a pytest session of its own, in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# Records, in the child session, what the harness did: the SIGTERM handler during the test and
# after the session, and every call of the session reaper.
CONFTEST = """
import signal
import atexit
from vllm_ref_harness import procs

_reap = procs.reap

def _recording_reap(*args, **kwargs):
    print("REAPED", flush=True)
    return _reap(*args, **kwargs)

procs.reap = _recording_reap
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the host project's own handler
atexit.register(lambda: print("AFTER", "host" if signal.getsignal(signal.SIGTERM) == signal.SIG_IGN else "other",
                              flush=True))
"""


def session(tmp_path: Path, test: str) -> str:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_child.py").write_text(textwrap.dedent(test))
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", str(tmp_path)],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_a_session_without_harness_fixtures_is_untouched(tmp_path: Path) -> None:
    out = session(tmp_path, """
        import signal

        def test_plain():
            print("DURING", "host" if signal.getsignal(signal.SIGTERM) == signal.SIG_IGN else "other")
    """)
    assert "DURING host" in out
    assert "AFTER host" in out
    assert "REAPED" not in out


@pytest.mark.parametrize("how", ["fixture", "marker"])
def test_a_harness_fixture_or_the_vllm_marker_switches_it_on(tmp_path: Path, how: str) -> None:
    args = "tiny_model" if how == "fixture" else ""
    mark = "@pytest.mark.vllm" if how == "marker" else ""
    out = session(tmp_path, f"""
        import signal
        import pytest

        {mark}
        def test_boots({args}):
            print("DURING", getattr(signal.getsignal(signal.SIGTERM), "__name__", None))
    """)
    assert "DURING _on_sigterm" in out
    assert "REAPED" in out
    assert "AFTER host" in out  # the host's handler is back after the session
