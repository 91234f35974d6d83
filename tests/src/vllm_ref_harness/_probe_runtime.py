"""Runtime half of the process probe (see _probe_site/sitecustomize.py)."""

from __future__ import annotations

import importlib
import importlib.metadata as md
import json
import os
import re
import sys
import threading
import time
import traceback
from typing import Any

_lock = threading.Lock()
_installed = False
_last_checks: dict[str, Any] = {}


def _cmdline() -> str:
    # sys.argv is just ["-m"] while a `python -m` module is still being imported.
    try:
        with open("/proc/self/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return " ".join(sys.argv)


def role() -> tuple[str, int | None]:
    """This process's vLLM role and rank, from its name, title and command line."""
    argv = _cmdline()
    if "vllm.model_executor.models.registry" in argv:
        return "registry", None
    names = []
    if "multiprocessing" in sys.modules:
        names.append(sys.modules["multiprocessing"].current_process().name)
    if "setproctitle" in sys.modules:
        try:
            names.append(sys.modules["setproctitle"].getproctitle())
        except Exception:
            pass
    text = " ".join(names)
    rank_m = re.search(r"(?:Worker_TP|VllmWorker-|Worker_PP\d+_TP|TP)(\d+)", text)
    rank = int(rank_m.group(1)) if rank_m else None
    if "default_worker.py" in argv or "ray::" in argv:  # started by Ray's raylet (titles "ray::...")
        return "ray_worker", rank
    if "EngineCore" in text:
        return "engine_core", None
    if "Worker" in text:
        return "worker", rank
    if "ApiServer" in text:
        return "front_end", None
    main_name = names[0] if names else "MainProcess"
    if main_name == "MainProcess":
        return "front_end", None
    return "other", None



def _write(event: dict[str, Any]) -> None:
    r, rank = role()
    event.update(pid=os.getpid(), ppid=os.getppid(), role=r, rank=rank, t=time.time())
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
    while True:
        time.sleep(period)
        if "vllm" not in sys.modules:
            continue
        if not meta_written:
            meta_written = True
            vllm = sys.modules["vllm"]
            _write({"event": "meta", "argv": sys.argv, "executable": sys.executable,
                    "vllm_version": getattr(vllm, "__version__", None)})
        current_role = role()
        if current_role != last_role:
            last_role = current_role
            _write({"event": "role"})
        for label, target in checks.items():
            value = _run_check(target)
            if label not in _last_checks or _last_checks[label] != value:
                _last_checks[label] = value
                _write({"event": "check", "label": label, "value": value})
