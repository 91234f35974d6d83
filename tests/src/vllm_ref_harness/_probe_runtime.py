"""Runtime half of the process probe (see _probe_site/sitecustomize.py)."""

from __future__ import annotations

import atexit
import importlib
import importlib.metadata as md
import json
import os
import sys
import threading
import time
import traceback
from typing import Any

from vllm_ref_common.roles import process_role

_lock = threading.Lock()
_installed = False
_last_checks: dict[str, Any] = {}


def _write(event: dict[str, Any]) -> None:
    r = process_role()
    event.update(pid=os.getpid(), ppid=os.getppid(), role=r.role, rank=r.rank, ray=r.ray, t=time.time())
    line = json.dumps(event, default=repr)
    path = os.path.join(os.environ["REF_PROBE_DIR"], f"{os.getpid()}.jsonl")
    with _lock, open(path, "a") as f:
        f.write(line + "\n")


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
        return out

    probed.__wrapped__ = obj  # type: ignore[attr-defined]
    probed.__name__ = getattr(obj, "__name__", "probed")
    return probed


def install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    original_load = md.EntryPoint.load
    original_entry_points = md.entry_points

    def load(self: md.EntryPoint) -> Any:
        group = getattr(self, "group", "") or ""
        if not group.startswith("vllm."):
            return original_load(self)
        try:
            obj = original_load(self)
        except BaseException as exc:
            _write({"event": "load_failed", "group": group, "name": self.name,
                    "error": f"{type(exc).__name__}: {exc}"})
            raise
        _write({"event": "loaded", "group": group, "name": self.name, "value": self.value})
        return _wrap_callable(self, obj)

    def entry_points(**params: Any) -> Any:
        eps = original_entry_points(**params)
        group = params.get("group")
        if isinstance(group, str) and group.startswith("vllm."):
            _write({"event": "discovered", "group": group, "names": [e.name for e in eps]})
        return eps

    md.EntryPoint.load = load  # type: ignore[method-assign]
    md.entry_points = entry_points  # type: ignore[assignment]
    checks = _parse_checks(os.environ.get("REF_PROBE_CHECKS", ""))
    threading.Thread(target=_check_loop, args=(checks,), name="vllm-ref-probe", daemon=True).start()
    atexit.register(_final_checks, checks)


def _evaluate(checks: dict[str, str]) -> None:
    for label, target in checks.items():
        value = _run_check(target)
        if label not in _last_checks or _last_checks[label] != value:
            _last_checks[label] = value
            _write({"event": "check", "label": label, "value": value})


def _final_checks(checks: dict[str, str]) -> None:
    """One last round as the process exits normally: a front end whose loop never got a round
    in (seen on a loaded 2-core machine) still reports. Bounded, so exit never waits on it."""
    if "vllm" not in sys.modules:
        return
    t = threading.Thread(target=_evaluate, args=(checks,), name="vllm-ref-probe-final", daemon=True)
    t.start()
    t.join(timeout=5)



def _parse_checks(spec: str) -> dict[str, str]:
    checks = {}
    for item in filter(None, (s.strip() for s in spec.split(";"))):
        label, _, target = item.partition("=")
        checks[label.strip()] = target.strip()
    return checks


def _run_check(target: str) -> Any:
    module, _, attr = target.partition(":")
    try:
        fn = getattr(importlib.import_module(module), attr)
        value = fn()
        json.dumps(value)
        return value
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def _check_loop(checks: dict[str, str]) -> None:
    period = float(os.environ.get("REF_PROBE_PERIOD", "0.25"))
    meta_written = False
    last_role = None
    last_error = None
    while True:
        time.sleep(period)
        if "vllm" not in sys.modules:
            continue
        try:
            if not meta_written:
                meta_written = True
                vllm = sys.modules["vllm"]
                _write({"event": "meta", "argv": sys.argv, "executable": sys.executable,
                        "vllm_version": getattr(vllm, "__version__", None)})
            current_role = process_role()
            if current_role != last_role:
                last_role = current_role
                _write({"event": "role"})
            _evaluate(checks)
        except Exception as exc:  # a dead probe thread would look like "never evaluated": say why, go on
            error = f"{type(exc).__name__}: {exc}"
            if error != last_error:
                last_error = error
                _write({"event": "probe_error", "error": error})
