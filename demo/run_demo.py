"""`make demo`: a real vLLM with every reference plugin, and where each one took effect.

Each plugin contributes demo/contrib/<name>.py (PLUGIN, CHECK: the plugin's own status()
function, the same one its tests read, ENV, SERVER_ARGS,
exercise(server, model), and optionally model_path(), prepare(env, plugins) or
separate_run(model) with its SEPARATE_TITLE). The demo boots
one `vllm serve` with every plugin that shares an engine, runs each plugin's exercise, and
prints one row per vLLM process and one column per plugin. A platform plugin takes over the
whole engine, so it runs in a separate boot (separate_run).
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from pathlib import Path
from types import ModuleType

from vllm_ref_harness import ProbeReport, VllmServer, tiny_llama

# Run as a script, so its folder is sys.path[0] and `contrib` imports by name.
HERE = Path(__file__).resolve().parent


def contributions() -> list[ModuleType]:
    """The contrib modules by name, except that one may set ORDER (default 50) to run later."""
    mods = []
    for path in sorted((HERE / "contrib").glob("*.py")):
        if path.stem != "__init__":
            mods.append(importlib.import_module(f"contrib.{path.stem}"))
    return sorted(mods, key=lambda m: getattr(m, "ORDER", 50))


def print_table(title: str, report: ProbeReport, mods: list[ModuleType]) -> None:
    print(f"\n== {title}")
    print(report.table([m.PLUGIN for m in mods], {m.PLUGIN: m.PLUGIN for m in mods}))
    print("(loaded: the entry point was loaded there; + effect: the plugin's status() says it took effect there)")


def main() -> int:
    t0 = time.monotonic()
    mods = contributions()
    shared = [m for m in mods if not hasattr(m, "separate_run")]
    separate = [m for m in mods if hasattr(m, "separate_run")]
    model = next((m.model_path() for m in mods if hasattr(m, "model_path")), None) or tiny_llama()
    env: dict[str, str] = {}
    args: list[str] = []
    plugins = [m.PLUGIN for m in shared]
    for m in shared:
        env.update(getattr(m, "ENV", {}))
        args += getattr(m, "SERVER_ARGS", [])
        if hasattr(m, "prepare"):  # e.g. a helper plugin beside the one shown
            m.prepare(env, plugins)
    checks = {m.PLUGIN: m.CHECK for m in mods}
    if "--dry-run" in sys.argv[1:]:  # wired and imported, nothing booted (the smoke test in `make test`)
        print(f"demo (dry run): would serve {model} with {plugins}, args {args}, checks {sorted(checks)}; "
              f"separate boots: {[m.PLUGIN for m in separate]}")
        return 0
    failures = []
    print(f"demo: serving {model} with {[m.PLUGIN for m in shared] or 'no plugins yet'}")
    with VllmServer(model, args=args, plugins=plugins, checks=checks, env=env) as server:
        sections = []
        for m in shared:
            try:
                sections.append((m.PLUGIN, m.exercise(server, server.model)))
            except Exception as exc:  # one plugin's failure must not hide the others
                failures.append(m.PLUGIN)
                sections.append((m.PLUGIN, [f"FAILED: {type(exc).__name__}: {exc}"]))
        report = server.wait_for_check(shared[0].PLUGIN if shared else "", ("front_end", "engine_core", "worker"))
        time.sleep(1)  # one more probe period, so late effects are in
        report = server.report()
    print_table("vLLM processes (rows) x plugins (columns): loaded / effect seen in that process",
                report, shared)
    for name, lines in sections:
        print(f"\n-- {name}")
        for line in lines:
            print(f"   {line}")
    for m in separate:
        try:
            rep, lines = m.separate_run(model)
            print_table(f"{m.PLUGIN}: {getattr(m, 'SEPARATE_TITLE', 'a separate boot')}", rep, [m])
            for line in lines:
                print(f"   {line}")
        except Exception as exc:
            failures.append(m.PLUGIN)
            print(f"\n-- {m.PLUGIN}\n   FAILED: {type(exc).__name__}: {exc}")
    print(f"\ndemo finished in {time.monotonic() - t0:.0f} s" + (f"; FAILED: {failures}" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    os.environ.setdefault("REF_HARNESS_CACHE", str(HERE.parent / ".cache"))
    sys.exit(main())
