"""Every vLLM plugin this process can see: installed entry points of every `vllm.*` group, whether
VLLM_PLUGINS lets each one load, whether it was imported here, and what a vllm-ref plugin's
status() says. The endpoint plugin reports it for every vLLM process of a server.

Only names leave this module, never values: of the environment it reports which of a plugin's
settings are set, not what they are set to.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import sys
from typing import Any

from .gate import vllm_version
from .roles import process_role

__all__ = ["allowlist", "allowed", "plugin_inventory", "process_report"]

NOT_FILTERED = "vllm.logits_processors"  # vLLM loads every installed one, whatever VLLM_PLUGINS says
OPT_IN = "vllm.endpoint_plugins"  # loaded only when named in VLLM_PLUGINS


def allowlist(env: Any = None) -> list[str] | None:
    """The names VLLM_PLUGINS keeps, as vLLM parses it (None: unset, everything loads)."""
    raw = (os.environ if env is None else env).get("VLLM_PLUGINS")
    return None if raw is None else [n.strip() for n in raw.split(",")]


def allowed(group: str, name: str, names: list[str] | None) -> bool:
    """Whether vLLM's loader would load entry point `name` of `group` under allowlist `names`."""
    if group == NOT_FILTERED:
        return True
    if group == OPT_IN:
        return names is not None and name in names
    return names is None or name in names


def _status(module: str) -> Any:
    # A vllm-ref package's status(), only where the package is already imported: reading must
    # never import a plugin into a process that did not load it.
    top = sys.modules.get(module.split(".")[0])
    fn = getattr(top, "status", None)
    if not callable(fn):
        return None
    try:
        return fn()
    except Exception as exc:  # a broken status() must not break the report
        return {"error": f"{type(exc).__name__}: {exc}"}


def plugin_inventory(env: Any = None) -> dict[str, Any]:
    """{"vllm_plugins": the allowlist or None, "unknown_names": allowlisted names no installed
    entry point has, "entry_points": one dict per installed entry point of a vllm.* group}."""
    env = os.environ if env is None else env
    names = allowlist(env)
    everything = md.entry_points()
    rows = []
    for group in sorted(g for g in everything.groups if g.startswith("vllm.")):
        for ep in sorted(everything.select(group=group), key=lambda e: e.name):
            dist = ep.dist
            dist_name = dist.metadata["Name"] if dist is not None else None
            row: dict[str, Any] = {
                "group": group, "name": ep.name, "value": ep.value, "distribution": dist_name,
                "version": dist.version if dist is not None else None,
                "filtered": not allowed(group, ep.name, names), "imported": ep.module in sys.modules,
            }
            if dist_name and dist_name.startswith("vllm-ref-"):
                prefix = ep.name.upper()
                row["settings_set"] = sorted(k for k in env if k == prefix or k.startswith(prefix + "_"))
                row["status"] = _status(ep.module)
            rows.append(row)
    known = {r["name"] for r in rows}
    unknown = sorted({n for n in names or [] if n and n not in known})
    return {"vllm_plugins": names, "unknown_names": unknown, "entry_points": rows}


def process_report() -> dict[str, Any]:
    """This process: its pid, vLLM role, rank, vLLM version, and plugin_inventory()."""
    role = process_role()
    return {"pid": os.getpid(), "role": role.role, "rank": role.rank, "ray": role.ray,
            "roles": sorted(role.roles), "vllm_version": vllm_version(), **plugin_inventory()}
