"""Runtime half of the process probe (see _probe_site/sitecustomize.py).

What a probed process reports, and when (docs/harness.md, "What the probe guarantees"):
- every `vllm.*` entry point it discovered, loaded and called, written as it happens;
- the values of the effect checks (REF_PROBE_CHECKS), evaluated at fixed points: right after
  each `vllm.*` entry point is loaded and after each one is called (in the calling thread), by
  a poller every REF_PROBE_PERIOD seconds (effects that appear late), and once more on the way
  out: a normal exit, `os._exit`, or SIGTERM where the process has no handler of its own;
- how it ended (an "exit" event). A process file without one ended without a word (SIGKILL)
  or is still running.

Two rules keep it from going silent (the cause of the missing front-end reports, see
docs/harness.md): nothing here raises into the process or out of the poller, and no thread but
the exiting main thread imports anything: checks read modules that are fully imported, never
one that another thread is half-way through importing.
"""

from __future__ import annotations

import atexit
import importlib
import importlib.metadata as md
import json
import os
import signal
import sys
import threading
import time
import traceback
from types import ModuleType
from typing import Any

from vllm_ref_common.roles import process_role

# Re-entrant: a signal handler may run in the main thread while that thread is writing.
_io_lock = threading.RLock()
_eval_lock = threading.RLock()
_checks: dict[str, str] = {}
_last: dict[str, Any] = {}
# pid: the process this runtime reports for (a forked child stays dormant until it touches a
# vllm.* entry point itself); meta/role: what was written; ended: how the process left.
_state: dict[str, Any] = {"pid": None, "dormant": False, "meta": False, "role": None, "ended": None}
_complained: set[str] = set()
_real_exit = os._exit


def _complain(what: str, exc: BaseException) -> None:
    # The probe must never break the process it observes: a failure is said once on stderr.
    if what not in _complained:
        _complained.add(what)
        try:
            sys.stderr.write(f"[vllm-ref-harness] probe: {what}: {type(exc).__name__}: {exc}\n")
        except Exception:
            pass


def ready(name: str) -> ModuleType | None:
    """The module `name` if it is fully imported, else None (absent, or being imported by some
    thread right now: its attributes may not exist yet)."""
    module = sys.modules.get(name)
    if module is None or getattr(getattr(module, "__spec__", None), "_initializing", False):
        return None
    return module


def _role_fields() -> dict[str, Any]:
    try:
        r = process_role()
        return {"role": r.role, "rank": r.rank, "ray": r.ray}
    except Exception as exc:
        _complain("process role", exc)
        return {}


def _write(event: dict[str, Any]) -> None:
    """Append one JSON line to REF_PROBE_DIR/<pid>.jsonl; never raises."""
    try:
        event.update(pid=os.getpid(), ppid=os.getppid(), t=time.time(), **_role_fields())
        data = (json.dumps(event, default=repr) + "\n").encode()
        path = os.path.join(os.environ["REF_PROBE_DIR"], f"{os.getpid()}.jsonl")
        with _io_lock:
            # One write() of a line opened O_APPEND: a process killed mid-way leaves whole lines.
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
    except Exception as exc:
        _complain("writing an event", exc)


def _active() -> bool:
    return _state["pid"] == os.getpid() and not _state["dormant"]


def _wake() -> None:
    """A forked child that touches a vllm.* entry point is a vLLM process of its own."""
    if _state["pid"] != os.getpid():
        return
    if _state["dormant"]:
        _state["dormant"] = False
        _start_poller()


def _wrap_callable(ep: md.EntryPoint, obj: Any) -> Any:
    # Classes are returned untouched (vLLM checks subclassing); plain functions are wrapped
    # so that a call, its return value and any exception are recorded.
    if isinstance(obj, type) or not callable(obj):
        return obj

    def probed(*args: Any, **kwargs: Any) -> Any:
        try:
            out = obj(*args, **kwargs)
        except BaseException as exc:
            _write({"event": "raised", "group": ep.group, "name": ep.name,
                    "error": f"{type(exc).__name__}: {exc}",
                    "traceback": traceback.format_exc(limit=8)})
            raise
        _write({"event": "called", "group": ep.group, "name": ep.name,
                "returned": out if isinstance(out, (str, int, float, bool, type(None))) else repr(out)})
        evaluate("call")  # the plugin's register() just ran: its effect is there to see
        return out

    probed.__wrapped__ = obj  # type: ignore[attr-defined]
    probed.__name__ = getattr(obj, "__name__", "probed")
    return probed


def install() -> None:
    """Patch importlib.metadata, start the poller, hook every way out. Called once, from
    sitecustomize, in the main thread."""
    if _state["pid"] is not None:
        return
    _state["pid"] = os.getpid()
    _checks.update(parse_checks(os.environ.get("REF_PROBE_CHECKS", "")))
    original_load = md.EntryPoint.load
    original_entry_points = md.entry_points

    def load(self: md.EntryPoint) -> Any:
        group = getattr(self, "group", "") or ""
        if not group.startswith("vllm."):
            return original_load(self)
        _wake()
        try:
            obj = original_load(self)
        except BaseException as exc:
            _write({"event": "load_failed", "group": group, "name": self.name,
                    "error": f"{type(exc).__name__}: {exc}"})
            raise
        _write({"event": "loaded", "group": group, "name": self.name, "value": self.value})
        evaluate("load")
        return _wrap_callable(self, obj)

    def entry_points(**params: Any) -> Any:
        eps: Any = original_entry_points(**params)  # with group=: EntryPoints, not the mapping
        group = params.get("group")
        if isinstance(group, str) and group.startswith("vllm."):
            _wake()
            _write({"event": "discovered", "group": group, "names": [e.name for e in eps]})
        return eps

    md.EntryPoint.load = load  # type: ignore[method-assign]
    md.entry_points = entry_points
    _start_poller()
    atexit.register(leave, "exit")
    os._exit = _os_exit  # type: ignore[assignment]
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        # Only where nobody handles SIGTERM: vLLM's processes that install a handler of their own
        # replace this one, and theirs raises SystemExit, which reaches the atexit hook.
        signal.signal(signal.SIGTERM, _on_sigterm)
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork)


def _after_fork() -> None:
    # A fork inherits sys.modules (vllm included) but not the poller: stay silent unless the
    # child loads vllm.* entry points itself (a forked vLLM worker does; a helper does not).
    _state.update(pid=os.getpid(), dormant=True, meta=False, role=None, ended=None)
    _last.clear()


def parse_checks(spec: str) -> dict[str, str]:
    """REF_PROBE_CHECKS ("label=module:function;...") as {label: "module:function"}."""
    checks = {}
    for item in filter(None, (s.strip() for s in spec.split(";"))):
        label, _, target = item.partition("=")
        checks[label.strip()] = target.strip()
    return checks


def _value(module: ModuleType, attr: str) -> Any:
    try:
        value = getattr(module, attr)()
        json.dumps(value)
        return value
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


# A check's value while nothing in the process has imported its module.
NOT_IMPORTED = {"effect": False, "imported": False}


def evaluate(where: str, may_import: bool = False) -> None:
    """One round of checks, each written when its value changed. A check whose module nobody
    imported is NOT_IMPORTED, unless `may_import` (the exit round in the main thread): then it is
    imported here and asked. One that some thread is importing right now is left for a later
    round."""
    if not _active() or "vllm" not in sys.modules:
        return  # a process that never touched vLLM reports nothing
    if not _eval_lock.acquire(timeout=5):
        return
    try:
        _meta_and_role()
        for label, target in _checks.items():
            module_name, _, attr = target.partition(":")
            module = ready(module_name)
            if module is None and module_name not in sys.modules:
                if not may_import:
                    # Nothing in this process imported the plugin, so it has had no effect here
                    # (yet): said as such, without importing it from this thread.
                    _record(label, NOT_IMPORTED, where)
                    continue
                try:
                    module = importlib.import_module(module_name)
                except Exception as exc:
                    _record(label, {"error": f"{type(exc).__name__}: {exc}"}, where)
                    continue
            if module is not None:
                _record(label, _value(module, attr), where)
    except Exception as exc:
        _write({"event": "probe_error", "error": f"{type(exc).__name__}: {exc}"})
    finally:
        _eval_lock.release()


def _meta_and_role() -> None:
    vllm = ready("vllm")
    if not _state["meta"] and vllm is not None:
        _state["meta"] = True
        _write({"event": "meta", "argv": sys.argv, "executable": sys.executable,
                "vllm_version": getattr(vllm, "__version__", None), "checks": list(_checks)})
    role = _role_fields()
    if role and role != _state["role"]:
        _state["role"] = role
        _write({"event": "role"})


def _record(label: str, value: Any, where: str) -> None:
    if label not in _last or _last[label] != value:
        _last[label] = value
        _write({"event": "check", "label": label, "value": value, "at": where})


def leave(how: str) -> None:
    """The last round of checks and the "exit" event, once, synchronously, in the calling thread."""
    if _state["ended"] is not None or not _active() or "vllm" not in sys.modules:
        return
    _state["ended"] = how
    evaluate(how, may_import=threading.current_thread() is threading.main_thread())
    _write({"event": "exit", "how": how})


def _os_exit(code: int) -> None:
    leave(f"os._exit({code})")
    _real_exit(code)


def _on_sigterm(signum: int, frame: Any) -> None:
    leave("SIGTERM")
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _start_poller() -> None:
    threading.Thread(target=_poll, name="vllm-ref-probe", daemon=True).start()


def _poll() -> None:
    try:
        period = float(os.environ.get("REF_PROBE_PERIOD", "0.25"))
    except ValueError:
        period = 0.25
    me = os.getpid()
    while _state["pid"] == me and _state["ended"] is None:
        time.sleep(period)
        try:
            evaluate("poll")
        except BaseException as exc:  # evaluate never raises; this loop must not die regardless
            _complain("poll round", exc)
