"""A minimal vLLM IO-processor plugin: pairwise cosine similarity of texts, in one request.

vLLM calls the `vllm.io_processor_plugins` entry point in the front end only (the offline `LLM`
process or the API server), and only when the server is started with
`--io-processor-plugin example_io_processor` (or the model's config.json names it). The entry
point returns the qualified name of the processor class, or None to stay out of the way.
Nothing here imports vLLM at module level: the class lives in `processor.py`, imported only
when selected.
"""

from __future__ import annotations

import logging
import os

from packaging.specifiers import SpecifierSet

PLUGIN = "example_io_processor"
SUPPORTED_VLLM = ">=0.28,<0.34"  # the vLLM releases this plugin was tested on
ANY_VERSION_ENV = "EXAMPLE_IO_PROCESSOR_ANY_VERSION"  # =1: offer the processor on any release
logger = logging.getLogger(f"vllm.{PLUGIN}")
_state = {"built": 0}


def vllm_supported() -> bool:
    """Whether this front end runs a vLLM in SUPPORTED_VLLM (or ANY_VERSION_ENV=1 says to go
    ahead anyway); outside the range, one warning that names the way out."""
    try:
        from vllm import __version__ as version
    except ImportError:
        return False  # not inside vLLM: nothing to process for
    # prereleases=True: a dev build of a tested release counts as that release.
    if SpecifierSet(SUPPORTED_VLLM).contains(version, prereleases=True) or os.environ.get(ANY_VERSION_ENV) == "1":
        return True
    logger.warning("%s: vLLM %s is outside the tested range %s; offering no processor. Set %s=1 to offer it anyway.",
                   PLUGIN, version, SUPPORTED_VLLM, ANY_VERSION_ENV)
    return False


def io_processor() -> str | None:
    """The entry point: the processor class's qualified name, or None outside the tested range."""
    if not vllm_supported():
        return None
    return "vllm_example_io_processor.processor.SimilarityProcessor"


def status() -> dict:
    """{"effect": vLLM built the processor in this process} (cheap, no imports)."""
    return {"effect": _state["built"] > 0}
