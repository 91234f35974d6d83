"""A minimal out-of-tree vLLM tool-call parser, registered from a general plugin.

`register()` runs in every vLLM process and registers `example_tools` lazily with vLLM's
`ToolParserManager` (vLLM imports `parser.py` only where it builds a parser, in the API server),
after checking that vLLM has no parser of that name: vLLM's own registration would silently
replace it. Select it with `--tool-call-parser example_tools --enable-auto-tool-choice`.

Nothing here imports vLLM at module level.
"""

from __future__ import annotations

import logging
import os
import sys

from packaging.specifiers import SpecifierSet

PLUGIN = "example_tool_parser"
NAME = "example_tools"  # what --tool-call-parser selects
SUPPORTED_VLLM = ">=0.32,<0.33"  # the vLLM releases this plugin was tested on
ANY_VERSION_ENV = "EXAMPLE_TOOL_PARSER_ANY_VERSION"  # =1: register on any release
TARGET = (f"{__name__}.parser", "ExampleToolParser")

logger = logging.getLogger(f"vllm.{PLUGIN}")


def vllm_supported() -> bool:
    try:
        from vllm import __version__ as version
    except ImportError:
        return False
    if SpecifierSet(SUPPORTED_VLLM).contains(version, prereleases=True) or os.environ.get(ANY_VERSION_ENV) == "1":
        return True
    logger.warning("%s: vLLM %s is outside the tested range %s; not registering. Set %s=1 to register anyway.",
                   PLUGIN, version, SUPPORTED_VLLM, ANY_VERSION_ENV)
    return False


def register() -> None:
    """The entry point; safe to call again (a second call finds the name already ours)."""
    if not vllm_supported():
        return
    from vllm.tool_parsers import ToolParserManager

    if ToolParserManager.lazy_parsers.get(NAME) == TARGET:
        return
    if NAME in ToolParserManager.list_registered():
        raise ValueError(f"{PLUGIN}: vLLM already has a tool-call parser named {NAME!r}; not overwriting it")
    ToolParserManager.register_lazy_module(NAME, *TARGET)


def status() -> dict:
    """{"effect": vLLM's registry in this process maps NAME to this package's parser}."""
    module = sys.modules.get("vllm.tool_parsers.abstract_tool_parser")
    manager = getattr(module, "ToolParserManager", None)
    return {"effect": manager is not None and manager.lazy_parsers.get(NAME) == TARGET}
