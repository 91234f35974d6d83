"""ToyLM for vLLM: registered by the `example_custom_model` entry point in every vLLM process."""

from __future__ import annotations

import logging
import sys

from ._gate import check_vllm, env_flag, setting

PLUGIN = "example_custom_model"
SUPPORTED_VLLM = ">=0.28,<0.34"  # override: EXAMPLE_CUSTOM_MODEL_ANY_VERSION=1
DISABLE_ENV = setting(PLUGIN, "disable")  # EXAMPLE_CUSTOM_MODEL_DISABLE=1 switches it off
ARCHITECTURE = "ToyForCausalLM"
MODEL_TYPE = "toy_lm"

logger = logging.getLogger(f"vllm.{PLUGIN}")  # under vLLM's logger: shows in its log


def register() -> None:
    if env_flag(DISABLE_ENV):
        logger.warning("%s: %s is set, not registering %s", PLUGIN, DISABLE_ENV, ARCHITECTURE)
        return
    if not check_vllm(PLUGIN, SUPPORTED_VLLM):  # one warning, then out of the way
        return

    from transformers import AutoConfig
    from vllm import ModelRegistry

    from .config import ToyConfig

    # config.json says model_type "toy_lm": transformers must know the class, or vLLM would
    # ask for trust_remote_code.
    AutoConfig.register(MODEL_TYPE, ToyConfig, exist_ok=True)
    if ARCHITECTURE not in ModelRegistry.get_supported_archs():
        # A "module:Class" string: vLLM imports the model only where it builds it.
        ModelRegistry.register_model(ARCHITECTURE, f"{__name__}.model:ToyForCausalLM")
        logger.info("%s: registered %s (model_type %s)", PLUGIN, ARCHITECTURE, MODEL_TYPE)


def status() -> dict:
    """Whether this process's vLLM registry has ToyForCausalLM (cheap: imports nothing)."""
    registry = sys.modules.get("vllm.model_executor.models.registry")
    return {"effect": bool(registry and ARCHITECTURE in registry.ModelRegistry.models)}
