"""ToyLM for vLLM: registered by the `toy_model` entry point in every vLLM process."""

from __future__ import annotations

import logging
import os

SUPPORTED_VLLM = ">=0.28,<0.34"
ARCHITECTURE = "ToyForCausalLM"
MODEL_TYPE = "toy_lm"

logger = logging.getLogger("vllm.toy_model")  # under vLLM's logger: shows in its log


def register() -> None:
    if os.environ.get("TOY_MODEL_DISABLE") == "1":
        logger.warning("toy_model: TOY_MODEL_DISABLE=1, not registering %s", ARCHITECTURE)
        return
    import vllm
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    if Version(Version(vllm.__version__).base_version) not in SpecifierSet(SUPPORTED_VLLM):
        logger.warning("toy_model: vLLM %s is outside %s; not registering", vllm.__version__, SUPPORTED_VLLM)
        return

    from transformers import AutoConfig
    from vllm import ModelRegistry

    from .config import ToyConfig

    # config.json says model_type "toy_lm": transformers must know the class, or vLLM would
    # ask for trust_remote_code.
    AutoConfig.register(MODEL_TYPE, ToyConfig, exist_ok=True)
    if ARCHITECTURE not in ModelRegistry.get_supported_archs():
        # A "module:Class" string: vLLM imports the model only where it builds it.
        ModelRegistry.register_model(ARCHITECTURE, "toy_model.model:ToyForCausalLM")
        logger.info("toy_model: registered %s (model_type %s)", ARCHITECTURE, MODEL_TYPE)


def is_registered() -> bool:
    """Whether this process's vLLM registry has ToyForCausalLM (cheap: imports nothing)."""
    import sys

    registry = sys.modules.get("vllm.model_executor.models.registry")
    return bool(registry and ARCHITECTURE in registry.ModelRegistry.models)
