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

SUPPORTED_VLLM = (0, 28), (0, 34)  # [lowest, first unsupported) major.minor
OVERRIDE_ENV = "VLLM_GENERAL_EXAMPLE_ANY_VERSION"

# A child of vLLM's "vllm" logger, so the messages appear in vLLM's log with its format.
logger = logging.getLogger("vllm.hello_general")
_registrations = 0


def registrations() -> int:
    """How many times register() did its work in this process (1 once vLLM has loaded it)."""
    return _registrations


def _vllm_release() -> tuple[int, int] | None:
    try:
        import vllm
    except Exception:
        return None
    try:
        major, minor = (int(x) for x in str(vllm.__version__).split(".")[:2])
    except ValueError:
        return (0, 0)  # a dev build without a release number: treated as unsupported
    return major, minor


def register() -> None:
    """The entry point. Safe to call more than once: only the first call does anything."""
    global _registrations
    if _registrations:
        return
    release = _vllm_release()
    if release is None:
        logger.warning("hello_general: vLLM is not importable; the plugin does nothing.")
        return
    low, high = SUPPORTED_VLLM
    if not low <= release < high and os.environ.get(OVERRIDE_ENV) != "1":
        logger.warning("hello_general: vLLM %d.%d is outside the supported range %d.%d to %d.%d; "
                       "the plugin does nothing (set %s=1 to force it).", *release, *low, *high, OVERRIDE_ENV)
        return
    _registrations += 1
    # Whatever the plugin is for goes here: a ModelRegistry.register_model call, a patch, ...
    logger.info("hello_general: registered in process %d", os.getpid())
