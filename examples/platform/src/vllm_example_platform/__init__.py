"""A minimal out-of-tree vLLM platform plugin.

vLLM calls register() in every process it starts, while it decides which platform it runs on.
Return the platform class's import path to take over, or None to stay out of the way.
"""

from __future__ import annotations

import sys

from ._gate import check_vllm, env_flag, setting

PLUGIN = "example_platform"
SUPPORTED_VLLM = ">=0.28,<0.34"  # override: EXAMPLE_PLATFORM_ANY_VERSION=1
ACTIVATION_ENV = setting(PLUGIN)  # EXAMPLE_PLATFORM=1 stands for "the device is present"
PLATFORM = f"{__name__}.platform.MyAcceleratorPlatform"


def register() -> str | None:
    # Activate only when asked: a platform that always activated would take over every vLLM on
    # the machine. (A real plugin would probe its driver here, cheaply, without importing vLLM.)
    if not env_flag(ACTIVATION_ENV) or not check_vllm(PLUGIN, SUPPORTED_VLLM):
        return None
    return PLATFORM


def status() -> dict:
    """{"effect": this process's vLLM runs on MyAcceleratorPlatform} (cheap: no imports)."""
    mod = sys.modules.get("vllm.platforms")
    current = vars(mod).get("_current_platform") if mod is not None else None
    return {"effect": type(current).__name__ == "MyAcceleratorPlatform"}
