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

from ._gate import check_vllm

PLUGIN = "example_general_plugin"
SUPPORTED_VLLM = ">=0.28,<0.34"  # override: EXAMPLE_GENERAL_PLUGIN_ANY_VERSION=1

# A child of vLLM's "vllm" logger, so the messages appear in vLLM's log with its format.
logger = logging.getLogger(f"vllm.{PLUGIN}")
_registrations = 0


def status() -> dict:
    """What the plugin did in this process: {"effect": registered here, "registrations": count}."""
    return {"effect": _registrations == 1, "registrations": _registrations}


def register() -> None:
    """The entry point. Safe to call more than once: only the first call does anything."""
    global _registrations
    if _registrations or not check_vllm(PLUGIN, SUPPORTED_VLLM):  # one warning, then out of the way
        return
    _registrations += 1
    # Whatever the plugin is for goes here: a ModelRegistry.register_model call, a patch, ...
    logger.info("%s: registered in process %d", PLUGIN, os.getpid())
