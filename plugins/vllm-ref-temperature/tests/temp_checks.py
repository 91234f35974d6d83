"""Probe checks run inside every vLLM process (cheap, read-only, no imports)."""

import sys


def _stats():
    mod = sys.modules.get("vllm_ref_temperature._stats")
    return mod.STATS if mod is not None else None


def instantiated() -> bool:
    """A processor object exists in this process (vLLM builds them in the workers)."""
    s = _stats()
    return bool(s and s["instances"])


def scaled_rows() -> int:
    """Rows whose logits this process's processors have divided so far."""
    s = _stats()
    return int(s["scaled_rows"]) if s else 0
