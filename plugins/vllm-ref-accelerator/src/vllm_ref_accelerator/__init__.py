"""vllm-ref-accelerator: a reference out-of-tree vLLM platform for a simulated accelerator.

The entry point `ref_accelerator` (group `vllm.platform_plugins`) is `register()`. vLLM calls it
in every process while resolving `current_platform`; it returns the platform class's qualname
when the simulated device is "present" (REF_ACCELERATOR=1) and None otherwise. The
platform (platform.py) runs on the host CPU and routes attention to the project's Triton
kernels (attention.py), interpreted on the CPU. `status()` says what took effect here.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from vllm_ref_common import (
    FALSE_VALUES,
    TRUE_VALUES,
    any_version_env,
    check_vllm,
    env_flag,
    gate_verdict,
    setting,
    warn_once,
)

__all__ = ["ACTIVATION_ENV", "ANY_VERSION_ENV", "PLATFORM_CLS", "PLUGIN", "STATE", "SUPPORTED_VLLM", "register",
           "status"]

PLUGIN = "ref_accelerator"
SUPPORTED_VLLM = ">=0.32,<0.34"
ACTIVATION_ENV = setting(PLUGIN)
ANY_VERSION_ENV = any_version_env(PLUGIN)
PLATFORM_CLS = "vllm_ref_accelerator.platform.RefAcceleratorPlatform"

logger = logging.getLogger("vllm_ref.accelerator")

# What this process did, for status(), written where it happens (attention.py): attention layers
# built on the kernels, and the kernels' implementation, recorded by the first forward pass.
STATE: dict[str, Any] = {"layers": 0, "kernels": None}


def register() -> str | None:
    """The platform class qualname where the simulated device is present, else None."""
    present = env_flag(ACTIVATION_ENV)
    if present is False:
        # A platform that always activated would take over every vLLM on the machine.
        logger.debug("%s: %s is not set, so the simulated device is absent; the platform stays inactive.",
                     PLUGIN, ACTIVATION_ENV)
        return None
    if present is None:
        # vLLM swallows exceptions raised here (logged at debug level), so warn instead.
        value = os.environ.get(ACTIVATION_ENV, "")
        warn_once(f"{PLUGIN}: {ACTIVATION_ENV}={value!r} is not understood; accepted values: "
                  f"{'/'.join(TRUE_VALUES)} (activate) or {'/'.join(FALSE_VALUES[1:])}/unset. "
                  f"The platform stays inactive.")
        return None
    if not check_vllm(PLUGIN, SUPPORTED_VLLM):
        return None
    # The simulated device's memory is host memory, so its Triton kernels can only run in
    # Triton's interpreter. Triton reads this when triton.language is first imported, so it must
    # be in a process's environment from the start: set here, before vLLM starts its engine and
    # worker processes, it is (they inherit it). attention.check_interpreter() catches the rest.
    os.environ["TRITON_INTERPRET"] = "1"
    return PLATFORM_CLS


def status() -> dict[str, Any]:
    """What this plugin did in this process; cheap, imports nothing, safe from any thread.

    {"effect": this process's current_platform is the simulated accelerator, "platform": the
    class name of current_platform (None before vLLM resolved it), "attention": how many
    attention layers run on the Triton kernels here, "kernels": the kernels' implementation
    once a forward pass ran here (None before), "gate": the version gate's verdict}.
    """
    platforms = sys.modules.get("vllm.platforms")
    current = vars(platforms).get("_current_platform") if platforms is not None else None
    name = None if current is None else type(current).__name__
    return {"effect": name == "RefAcceleratorPlatform", "platform": name, "attention": STATE["layers"],
            "kernels": STATE["kernels"], "gate": gate_verdict(PLUGIN)}
