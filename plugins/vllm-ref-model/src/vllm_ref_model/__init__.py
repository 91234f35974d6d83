"""vllm-ref-model: the Parallax architecture, registered with vLLM out of tree.

Entry point `ref_model` (group `vllm.general_plugins`): vLLM calls `register()` in every
process it starts (front end, engine core, workers, the model-registry inspection
subprocess). It registers two things, both lazily and both idempotent:

- the config class with transformers' AutoConfig, so vLLM parses config.json with
  `model_type: "parallax"` without trust_remote_code;
- the architecture with vLLM's ModelRegistry as a "module:Class" string, so vLLM imports the
  model code only where it builds the model.

Set REF_MODEL_DISABLE=1 to switch it off; REF_MODEL_ANY_VERSION=1 to register on a
vLLM outside SUPPORTED_VLLM. Nothing here imports vLLM, torch or transformers at module level,
so `status()` can be read from any process.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from vllm_ref_common import any_version_env, check_vllm, env_flag, gate_verdict, setting, warn_once

__all__ = ["ANY_VERSION_ENV", "ARCHITECTURE", "DISABLE_ENV", "MODEL_CLASS", "MODEL_TYPE", "PLUGIN",
           "SUPPORTED_VLLM", "register", "status"]

PLUGIN = "ref_model"
SUPPORTED_VLLM = ">=0.30,<0.34"
ARCHITECTURE = "ParallaxForCausalLM"
MODEL_TYPE = "parallax"
MODEL_CLASS = f"{__name__}.model:{ARCHITECTURE}"
DISABLE_ENV = setting(PLUGIN, "disable")
ANY_VERSION_ENV = any_version_env(PLUGIN)

logger = logging.getLogger("vllm_ref.model")


def register() -> None:
    """Register Parallax with transformers and vLLM in this process (safe to call again)."""
    if env_flag(DISABLE_ENV):
        warn_once(f"{PLUGIN}: {DISABLE_ENV} is set; {ARCHITECTURE} is not registered.")
        return
    if not check_vllm(PLUGIN, SUPPORTED_VLLM):
        return

    from transformers import AutoConfig
    from vllm import ModelRegistry

    from .config import ParallaxConfig

    AutoConfig.register(MODEL_TYPE, ParallaxConfig, exist_ok=True)
    current = ModelRegistry.models.get(ARCHITECTURE) if hasattr(ModelRegistry, "models") else None
    if _registered():
        return
    if current is not None:
        # Someone (a user, another plugin) registered this name first: theirs wins, say so.
        warn_once(f"{PLUGIN}: architecture {ARCHITECTURE} is already registered as {current}; leaving it.")
        return
    ModelRegistry.register_model(ARCHITECTURE, MODEL_CLASS)
    logger.info("%s: registered architecture %s -> %s and config model_type %r",
                PLUGIN, ARCHITECTURE, MODEL_CLASS, MODEL_TYPE)


def _registered() -> bool:
    """Whether vLLM's registry in this process maps ARCHITECTURE to this package's class."""
    registry = sys.modules.get("vllm.model_executor.models.registry")
    if registry is None:
        return False
    entry = registry.ModelRegistry.models.get(ARCHITECTURE)
    if entry is None:
        return False
    name = f"{getattr(entry, 'module_name', '')}:{getattr(entry, 'class_name', '')}"
    if name == MODEL_CLASS:
        return True
    cls = getattr(entry, "model_cls", None)  # an eagerly registered class
    return cls is not None and f"{cls.__module__}:{cls.__name__}" == MODEL_CLASS


def _config_registered() -> bool:
    auto = sys.modules.get("transformers.models.auto.configuration_auto")
    try:
        return auto is not None and auto.CONFIG_MAPPING[MODEL_TYPE].__name__ == "ParallaxConfig"
    except KeyError:
        return False


def status() -> dict[str, Any]:
    """What this plugin did in this process; cheap, imports nothing, safe from any thread.

    {"effect": vLLM's ModelRegistry here maps ARCHITECTURE to this package's class,
    "config": transformers' AutoConfig here knows MODEL_TYPE, "gate": the version gate's
    verdict (None where register() never ran)}.
    """
    return {"effect": _registered(), "config": _config_registered(), "gate": gate_verdict(PLUGIN)}
