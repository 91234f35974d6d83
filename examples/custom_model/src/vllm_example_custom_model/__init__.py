"""ToyLM for vLLM: registered by the `example_custom_model` entry point in every vLLM process."""

from __future__ import annotations

import logging
import os
import sys

from packaging.specifiers import SpecifierSet

PLUGIN = "example_custom_model"
SUPPORTED_VLLM = ">=0.28,<0.34"  # the vLLM releases this plugin was tested on
ANY_VERSION_ENV = "EXAMPLE_CUSTOM_MODEL_ANY_VERSION"  # =1: register on any release
DISABLE_ENV = "EXAMPLE_CUSTOM_MODEL_DISABLE"  # =1 switches the plugin off
ARCHITECTURE = "ToyForCausalLM"
MODEL_TYPE = "toy_lm"

logger = logging.getLogger(f"vllm.{PLUGIN}")  # under vLLM's logger: shows in its log


def vllm_supported() -> bool:
    """Whether this process runs a vLLM in SUPPORTED_VLLM (or ANY_VERSION_ENV=1 says to go
    ahead anyway); outside the range, one warning that names the way out."""
    try:
        from vllm import __version__ as version
    except ImportError:
        return False  # not inside vLLM: nothing to register with
    # prereleases=True: a dev build of a tested release counts as that release.
    if SpecifierSet(SUPPORTED_VLLM).contains(version, prereleases=True) or os.environ.get(ANY_VERSION_ENV) == "1":
        return True
    logger.warning("%s: vLLM %s is outside the tested range %s; not registering %s. Set %s=1 to register anyway.",
                   PLUGIN, version, SUPPORTED_VLLM, ARCHITECTURE, ANY_VERSION_ENV)
    return False


def register() -> None:
    if os.environ.get(DISABLE_ENV) == "1":
        logger.warning("%s: %s is set, not registering %s", PLUGIN, DISABLE_ENV, ARCHITECTURE)
        return
    if not vllm_supported():
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
