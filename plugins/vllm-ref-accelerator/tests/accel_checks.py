"""Probe checks, run in every vLLM process of a harness boot (cheap, read-only, no imports)."""

import sys


def platform():
    """Class name of this process's resolved current_platform; None before it is resolved."""
    mod = sys.modules.get("vllm.platforms")
    current = vars(mod).get("_current_platform") if mod is not None else None
    return None if current is None else type(current).__name__


def attention():
    """The accelerator backend's usage counters in this process; None where it never loaded."""
    mod = sys.modules.get("vllm_ref_accelerator.attention")
    return None if mod is None else dict(mod.USAGE)
