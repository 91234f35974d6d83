"""A minimal out-of-tree vLLM platform plugin.

vLLM calls register() in every process it starts, while it decides which platform it runs on.
Return the platform class's import path to take over, or None to stay out of the way.
"""

from __future__ import annotations

import logging
import os
import sys

from packaging.specifiers import SpecifierSet

PLUGIN = "example_platform"
SUPPORTED_VLLM = ">=0.28,<0.34"  # the vLLM releases this plugin was tested on
ANY_VERSION_ENV = "EXAMPLE_PLATFORM_ANY_VERSION"  # =1: activate on any release
ACTIVATION_ENV = "EXAMPLE_PLATFORM"  # =1 stands for "the device is present"
PLATFORM = f"{__name__}.platform.MyAcceleratorPlatform"
logger = logging.getLogger(f"vllm.{PLUGIN}")


def vllm_supported() -> bool:
    """Whether this process runs a vLLM in SUPPORTED_VLLM (or ANY_VERSION_ENV=1 says to go
    ahead anyway); outside the range, one warning that names the way out."""
    try:
        from vllm import __version__ as version  # set first thing in vllm/__init__.py
    except ImportError:
        return False  # not inside vLLM: no platform to offer
    # prereleases=True: a dev build of a tested release counts as that release.
    if SpecifierSet(SUPPORTED_VLLM).contains(version, prereleases=True) or os.environ.get(ANY_VERSION_ENV) == "1":
        return True
    logger.warning("%s: vLLM %s is outside the tested range %s; not activating. Set %s=1 to activate anyway.",
                   PLUGIN, version, SUPPORTED_VLLM, ANY_VERSION_ENV)
    return False


def register() -> str | None:
    # Activate only when asked: a platform that always activated would take over every vLLM on
    # the machine. (A real plugin would probe its driver here, cheaply, without importing vLLM.)
    if os.environ.get(ACTIVATION_ENV) != "1" or not vllm_supported():
        return None
    return PLATFORM


def status() -> dict:
    """{"effect": this process's vLLM runs on MyAcceleratorPlatform} (cheap: no imports)."""
    mod = sys.modules.get("vllm.platforms")
    current = vars(mod).get("_current_platform") if mod is not None else None
    return {"effect": type(current).__name__ == "MyAcceleratorPlatform"}
