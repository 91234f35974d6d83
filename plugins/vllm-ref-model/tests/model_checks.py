"""Probe checks run inside every vLLM process (cheap, read-only, no imports of their own)."""

import sys


def registered() -> bool:
    """ParallaxForCausalLM maps to this plugin's class in vLLM's ModelRegistry here."""
    pkg = sys.modules.get("vllm_ref_model")
    return bool(pkg and pkg.is_registered())


def autoconfig() -> bool:
    """transformers' AutoConfig knows model_type 'parallax' here."""
    auto = sys.modules.get("transformers.models.auto.configuration_auto")
    if auto is None:
        return False
    try:
        return auto.CONFIG_MAPPING["parallax"].__name__ == "ParallaxConfig"
    except KeyError:
        return False
