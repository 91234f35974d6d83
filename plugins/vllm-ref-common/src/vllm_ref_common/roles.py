"""Which vLLM process this is: one answer for the patching framework, the harness's probe and
the endpoint plugin alike.

vLLM names its processes before any plugin loads: the engine core "EngineCore" (or
"EngineCore_DP<n>"), workers "VllmWorker-<n>" (renamed "Worker_TP<n>" etc. once they know their
rank), API servers "ApiServer_<n>". The model-registry inspection subprocess runs as
`python -m vllm.model_executor.models.registry`, and Ray workers are started by Ray's raylet
(`default_worker.py`, titles "ray::..."). Everything here is read from this process alone: its
multiprocessing name, its title (where setproctitle is loaded) and its command line.

Only the standard library: examples/patch vendors this file verbatim as `_roles.py`, and
examples/test_vendored.py keeps the copy identical.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass

__all__ = ["ROLES", "ProcessRole", "process_role", "process_roles"]

# The primary roles, in the order reports list them.
ROLES = ("front_end", "engine_core", "worker", "registry", "other")
_RANK = re.compile(r"(?:Worker_TP|VllmWorker-|Worker_PP\d+_TP|TP)(\d+)")


@dataclass(frozen=True)
class ProcessRole:
    role: str  # one of ROLES
    rank: int | None = None  # a worker's rank, where its name carries one
    ray: bool = False  # a worker started by Ray rather than by vLLM's multiprocess executor
    # Every role this process plays: the front end is also the engine core when
    # VLLM_ENABLE_V1_MULTIPROCESSING=0 runs the engine in-process.
    roles: frozenset[str] = frozenset()


def _cmdline() -> str:
    # sys.argv is just ["-m"] while a `python -m` module is still being imported.
    try:
        with open("/proc/self/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return " ".join(sys.argv)


def _names() -> list[str]:
    # Another thread may be importing either module right now: a half-initialised module lacks
    # the function (AttributeError), which silently killed the harness probe's thread once.
    names = []
    for module, getter in (("multiprocessing", lambda m: m.current_process().name),
                           ("setproctitle", lambda m: m.getproctitle())):
        mod = sys.modules.get(module)
        if mod is None or getattr(getattr(mod, "__spec__", None), "_initializing", False):
            continue
        try:
            names.append(getter(mod))
        except Exception:  # a broken name or title must not break the caller
            pass
    return names


def process_role() -> ProcessRole:
    """This process's vLLM role, from its name, title and command line (no vLLM import)."""
    cmdline = _cmdline()
    main_spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if ("vllm.model_executor.models.registry" in cmdline
            or getattr(main_spec, "name", "") == "vllm.model_executor.models.registry"):
        return ProcessRole("registry", roles=frozenset({"registry"}))
    names = _names()
    text = " ".join(names)
    m = _RANK.search(text)
    rank = int(m.group(1)) if m else None
    if "default_worker.py" in cmdline or "ray::" in cmdline:
        return ProcessRole("worker", rank, ray=True, roles=frozenset({"worker"}))
    if "EngineCore" in text:
        return ProcessRole("engine_core", roles=frozenset({"engine_core"}))
    if "Worker" in text:
        return ProcessRole("worker", rank, roles=frozenset({"worker"}))
    if "ApiServer" in text:
        return ProcessRole("front_end", roles=frozenset({"front_end"}))
    if (names[0] if names else "MainProcess") != "MainProcess":
        return ProcessRole("other", roles=frozenset({"other"}))
    if os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING", "1").strip().lower() in ("0", "false"):
        return ProcessRole("front_end", roles=frozenset({"front_end", "engine_core"}))
    return ProcessRole("front_end", roles=frozenset({"front_end"}))


def process_roles() -> frozenset[str]:
    """Every role this process plays (see ProcessRole.roles)."""
    return process_role().roles
