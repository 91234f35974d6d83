"""vllm-ref-model: the Parallax architecture, registered with vLLM out of tree.

Entry point `ref_model` (group `vllm.general_plugins`): vLLM calls `register()` in every
process it starts (front end, engine core, workers, the model-registry inspection
subprocess). It registers two things, both lazily and both idempotent:

- the config class with transformers' AutoConfig, so vLLM parses config.json with
  `model_type: "parallax"` without trust_remote_code;
- the architecture with vLLM's ModelRegistry as a "module:Class" string, so vLLM imports the
  model code only where it builds the model.

Set VLLM_REF_MODEL_DISABLE=1 to switch it off; VLLM_REF_MODEL_ANY_VERSION=1 to register on a
vLLM outside SUPPORTED_VLLM.
"""

from __future__ import annotations

import logging
import os

from vllm_ref_common import check_vllm, warn_once

from .config import MODEL_TYPE

__all__ = ["ARCHITECTURE", "MODEL_CLASS", "MODEL_TYPE", "SUPPORTED_VLLM", "is_registered", "register"]

PLUGIN = "ref_model"
SUPPORTED_VLLM = ">=0.30,<0.34"
ARCHITECTURE = "ParallaxForCausalLM"
MODEL_CLASS = f"{__name__}.model:{ARCHITECTURE}"
DISABLE_ENV = "VLLM_REF_MODEL_DISABLE"
ANY_VERSION_ENV = "VLLM_REF_MODEL_ANY_VERSION"

# Under vLLM's logger so the line appears in vLLM's log, in its format, at its level.
logger = logging.getLogger("vllm.ref_model")


def register() -> None:
    """Register Parallax with transformers and vLLM in this process (safe to call again)."""
    if os.environ.get(DISABLE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}:
        warn_once(f"{PLUGIN}: {DISABLE_ENV} is set; {ARCHITECTURE} is not registered.")
        return
    if not check_vllm(PLUGIN, SUPPORTED_VLLM, override_env=ANY_VERSION_ENV):
        return

    from transformers import AutoConfig
    from vllm import ModelRegistry

    from .config import ParallaxConfig

    AutoConfig.register(MODEL_TYPE, ParallaxConfig, exist_ok=True)
    current = ModelRegistry.models.get(ARCHITECTURE) if hasattr(ModelRegistry, "models") else None
    if is_registered():
        return
    if current is not None:
        # Someone (a user, another plugin) registered this name first: theirs wins, say so.
        warn_once(f"{PLUGIN}: architecture {ARCHITECTURE} is already registered as {current}; leaving it.")
        return
    ModelRegistry.register_model(ARCHITECTURE, MODEL_CLASS)
    logger.info("%s: registered architecture %s -> %s and config model_type %r",
                PLUGIN, ARCHITECTURE, MODEL_CLASS, MODEL_TYPE)


def is_registered() -> bool:
    """Whether vLLM's registry in this process maps ARCHITECTURE to this package's class."""
    import sys

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
