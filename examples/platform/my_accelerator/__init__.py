"""A minimal out-of-tree vLLM platform plugin.

vLLM calls register() in every process it starts, while it decides which platform it runs on.
Return the platform class's import path to take over, or None to stay out of the way.
"""

from __future__ import annotations

import os
import sys

ACTIVATION_ENV = "MY_ACCELERATOR"  # stands for "the device is present"
PLATFORM = "my_accelerator.platform.MyAcceleratorPlatform"


def register() -> str | None:
    # Activate only when asked: a platform that always activated would take over every vLLM on
    # the machine. (A real plugin would probe its driver here, cheaply, without importing vLLM.)
    if os.environ.get(ACTIVATION_ENV) != "1":
        return None
    return PLATFORM


def is_current_platform() -> bool:
    """True where this process's vLLM runs on MyAcceleratorPlatform (cheap: no imports)."""
    mod = sys.modules.get("vllm.platforms")
    current = vars(mod).get("_current_platform") if mod is not None else None
    return type(current).__name__ == "MyAcceleratorPlatform"
