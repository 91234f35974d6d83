"""Finding and ending every process a harness run started.

Each run exports REF_HARNESS_TAG=<session>/<run>. Every process vLLM spawns inherits
it (spawn start method, Ray workers started by our own `ray start`), so the harness can find
them all in /proc, whatever their process group, and prove that none survives a test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid

import psutil

TAG_VAR = "REF_HARNESS_TAG"
SESSION_TAG = f"s{os.getpid()}-{uuid.uuid4().hex[:8]}"


# Run tag -> id of the Unix session its boot was started in. vLLM renames its engine core and
# workers with setproctitle, which overwrites the memory /proc/<pid>/environ reads, so those
# processes lose the tag there; they keep the session id, which outlives the session leader.
# Boots may run from several threads at once (two engines side by side): a lock, so one thread's
# stop() never walks the dict while another's start adds to it.
_SESSIONS: dict[str, int] = {}
_SESSIONS_LOCK = threading.Lock()


def new_run_tag() -> str:
    return f"{SESSION_TAG}/{uuid.uuid4().hex[:8]}"


def track_session(tag: str, sid: int) -> None:
    """Record that the boot tagged `tag` runs in Unix session `sid`."""
    with _SESSIONS_LOCK:
        _SESSIONS[tag] = sid


def sessions(prefix: str) -> list[int]:
    with _SESSIONS_LOCK:
        return sorted({sid for tag, sid in _SESSIONS.items() if tag.startswith(prefix)})


def tagged(prefix: str, sids: list[int] | tuple[int, ...] = ()) -> list[psutil.Process]:
    """Live processes tagged with a tag starting with prefix, or in one of its boots' sessions
    (or in `sids`, for sessions started by another process)."""
    all_sids = set(sids) | set(sessions(prefix))
    found = []
    me = os.getpid()
    for p in psutil.process_iter(["pid"]):
        if p.pid == me:
            continue
        try:
            if p.status() == psutil.STATUS_ZOMBIE:
                continue
            tag = p.environ().get(TAG_VAR)
            if (tag and tag.startswith(prefix)) or os.getsid(p.pid) in all_sids:
                found.append(p)
        except (psutil.Error, OSError):
            continue
    return found


def describe(procs: list[psutil.Process]) -> list[str]:
    out = []
    for p in procs:
        try:
            out.append(f"pid {p.pid} {p.name()!r}: {' '.join(p.cmdline())[:160]}")
        except psutil.Error:
            out.append(f"pid {p.pid} (gone)")
    return out


def wait_gone(prefix: str, timeout: float) -> None:
    """Give tagged processes `timeout` seconds to exit on their own (e.g. multiprocessing's
    resource tracker, which exits once its parent's pipe closes)."""
    deadline = time.monotonic() + timeout
    while tagged(prefix) and time.monotonic() < deadline:
        time.sleep(0.2)


def reap(prefix: str, grace: float = 10.0) -> list[str]:
    """End every process tagged with prefix: SIGTERM, then SIGKILL after grace seconds.

    Returns descriptions of the processes that were still alive when reap started (callers
    decide whether that counts as a leak), and raises RuntimeError if any survives SIGKILL.
    """
    procs = tagged(prefix)
    found = describe(procs)
    for p in procs:
        try:
            p.send_signal(signal.SIGTERM)
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=10)
    deadline = time.monotonic() + 10
    while (left := tagged(prefix)) and time.monotonic() < deadline:
        for p in left:
            try:
                p.kill()
            except psutil.Error:
                pass
        time.sleep(0.2)
    if left:
        raise RuntimeError(f"vllm-ref-harness: processes survived SIGKILL: {describe(left)}")
    return found


def stop_group(proc: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """SIGTERM the process group led by proc, SIGKILL it after grace seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=grace)
            return  # what the leader left behind is found by tag (see reap)
        except subprocess.TimeoutExpired:
            continue
