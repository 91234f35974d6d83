"""Probe check for this repository's example test: cheap, read-only, imports nothing heavy."""

import sys


def scaled() -> bool:
    mod = sys.modules.get("vllm_logitsproc_example")
    return bool(mod and mod.SCALED["rows"])
