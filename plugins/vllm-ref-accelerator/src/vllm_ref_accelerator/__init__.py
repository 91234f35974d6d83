"""vllm-ref-accelerator: a reference out-of-tree vLLM platform for a simulated accelerator.

The entry point `ref_accelerator` (group `vllm.platform_plugins`) is `register()`. vLLM calls it
in every process while resolving `current_platform`; it returns the platform class's qualname
when the simulated device is "present" (VLLM_REF_ACCELERATOR=1) and None otherwise. The
platform (platform.py) runs on the host CPU and routes attention to the project's Triton
kernels (attention.py), interpreted on the CPU.
"""

from __future__ import annotations

import logging
import os

from vllm_ref_common import check_vllm, warn_once

__all__ = ["ACTIVATION_ENV", "PLATFORM_CLS", "SUPPORTED_VLLM", "VERSION_OVERRIDE_ENV", "register"]

SUPPORTED_VLLM = ">=0.32,<0.34"
ACTIVATION_ENV = "VLLM_REF_ACCELERATOR"
VERSION_OVERRIDE_ENV = "VLLM_REF_ACCELERATOR_ANY_VERSION"
PLATFORM_CLS = "vllm_ref_accelerator.platform.RefAcceleratorPlatform"

_ON = {"1", "true", "yes", "on"}
_OFF = {"", "0", "false", "no", "off"}

logger = logging.getLogger("vllm_ref.accelerator")


def register() -> str | None:
    """The platform class qualname where the simulated device is present, else None."""
    value = os.environ.get(ACTIVATION_ENV, "").strip().lower()
    if value in _OFF:
        # A platform that always activated would take over every vLLM on the machine.
        logger.debug("ref_accelerator: %s is not set, so the simulated device is absent; "
                     "the platform stays inactive.", ACTIVATION_ENV)
        return None
    if value not in _ON:
        # vLLM swallows exceptions raised here (logged at debug level), so warn instead.
        warn_once(f"ref_accelerator: {ACTIVATION_ENV}={value!r} is not understood; accepted values: "
                  f"1/true/yes/on (activate) or 0/false/no/off/unset. The platform stays inactive.")
        return None
    if not check_vllm("ref_accelerator", SUPPORTED_VLLM, override_env=VERSION_OVERRIDE_ENV):
        return None
    # The simulated device's memory is host memory, so its Triton kernels can only run in
    # Triton's interpreter. Triton reads this when triton.language is first imported, so it must
    # be in a process's environment from the start: set here, before vLLM starts its engine and
    # worker processes, it is (they inherit it). attention.check_interpreter() catches the rest.
    os.environ["TRITON_INTERPRET"] = "1"
    return PLATFORM_CLS
