"""Version gating shared by every vllm-ref plugin (and by the scheduler's patch framework)."""

from __future__ import annotations

import logging
import os
import re

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

__all__ = ["check_vllm", "parse_version", "version_in_range", "vllm_version", "warn_once"]

logger = logging.getLogger("vllm_ref")
_warned: set[str] = set()
_TRUE = {"1", "true", "yes", "on"}


def warn_once(message: str) -> None:
    """Log `message` as a warning the first time it is seen in this process."""
    if message not in _warned:
        _warned.add(message)
        logger.warning(message)


def parse_version(text: str) -> Version | None:
    """PEP 440 where possible, else the leading dotted numbers ("0.33.0-custom" -> 0.33.0)."""
    try:
        return Version(text)
    except (InvalidVersion, TypeError):
        m = re.match(r"\s*v?(\d+(?:\.\d+)*)", str(text))
        return Version(m.group(1)) if m else None


def version_in_range(version: str, supported: str) -> bool:
    """Whether `version` lies in `supported` (a specifier set such as ">=0.28,<0.34").

    Only the release numbers are compared: a dev, rc or post release of a supported version
    is supported, and a local tag (+cpu) is ignored. Unknown versions are outside.
    """
    v = parse_version(version)
    if v is None:
        return False
    return SpecifierSet(supported).contains(Version(v.base_version), prereleases=True)


def vllm_version() -> str | None:
    """The running vLLM's version, or None where vLLM cannot be imported."""
    try:
        import vllm
    except Exception:
        return None
    return str(getattr(vllm, "__version__", "unknown"))


def check_vllm(plugin: str, supported: str, *, override_env: str) -> bool:
    """True when the plugin should register itself in this process.

    Outside `supported` it logs one warning naming the plugin, the running version, the
    supported range and the override variable, and returns False, unless override_env is
    set to 1/true. Without an importable vLLM it logs one warning and returns False.
    """
    version = vllm_version()
    if version is None:
        warn_once(f"{plugin}: vLLM is not importable here; the plugin does nothing.")
        return False
    if version_in_range(version, supported):
        return True
    if os.environ.get(override_env, "").strip().lower() in _TRUE:
        warn_once(f"{plugin}: vLLM {version} is outside the supported range {supported}; "
                  f"registering anyway because {override_env} is set.")
        return True
    warn_once(f"{plugin}: vLLM {version} is outside the supported range {supported}; the plugin "
              f"stays out of the way. Set {override_env}=1 to register it anyway.")
    return False
