"""A minimal vLLM general plugin.

vLLM calls every function in the `vllm.general_plugins` entry-point group once in each of its
processes (front end, engine core, every worker) before it builds anything, so this is where
a plugin registers models, patches or settings that every process must see. This one only
says hello, once per process, and keeps a count that a test can read.

Nothing here imports vLLM at module level: the module must stay importable (and harmless)
where vLLM is missing or is a release the plugin was not written for.
"""

from __future__ import annotations

import logging
import os

from packaging.specifiers import SpecifierSet

PLUGIN = "example_general_plugin"
SUPPORTED_VLLM = ">=0.28,<0.34"  # the vLLM releases this plugin was tested on
ANY_VERSION_ENV = "EXAMPLE_GENERAL_PLUGIN_ANY_VERSION"  # =1: register on any release

# A child of vLLM's "vllm" logger, so the messages appear in vLLM's log with its format.
logger = logging.getLogger(f"vllm.{PLUGIN}")
_registrations = 0


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
    logger.warning("%s: vLLM %s is outside the tested range %s; not registering. Set %s=1 to register anyway.",
                   PLUGIN, version, SUPPORTED_VLLM, ANY_VERSION_ENV)
    return False


def status() -> dict:
    """What the plugin did in this process: {"effect": registered here, "registrations": count}."""
    return {"effect": _registrations == 1, "registrations": _registrations}


def register() -> None:
    """The entry point. Safe to call more than once: only the first call does anything."""
    global _registrations
    if _registrations or not vllm_supported():
        return
    _registrations += 1
    # Whatever the plugin is for goes here: a ModelRegistry.register_model call, a patch, ...
    logger.info("%s: registered in process %d", PLUGIN, os.getpid())
