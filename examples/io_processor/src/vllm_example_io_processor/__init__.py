"""A minimal vLLM IO-processor plugin: pairwise cosine similarity of texts, in one request.

vLLM calls the `vllm.io_processor_plugins` entry point in the front end only (the offline `LLM`
process or the API server), and only when the server is started with
`--io-processor-plugin example_io_processor` (or the model's config.json names it). The entry
point returns the qualified name of the processor class, or None to stay out of the way.
Nothing here imports vLLM: the class lives in `processor.py`, imported only when selected.
"""

from __future__ import annotations

from ._gate import check_vllm

PLUGIN = "example_io_processor"
SUPPORTED_VLLM = ">=0.28,<0.34"  # override: EXAMPLE_IO_PROCESSOR_ANY_VERSION=1
_state = {"built": 0}


def io_processor() -> str | None:
    """The entry point: the processor class's qualified name, or None outside the tested range."""
    if not check_vllm(PLUGIN, SUPPORTED_VLLM):
        return None
    return "vllm_example_io_processor.processor.SimilarityProcessor"


def status() -> dict:
    """{"effect": vLLM built the processor in this process} (cheap, no imports)."""
    return {"effect": _state["built"] > 0}
