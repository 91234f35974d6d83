"""The version helpers the vendored framework needs (a copy of vllm-ref-common's)."""

from __future__ import annotations

import logging
import re

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

logger = logging.getLogger("vllm_ref")
_warned: set[str] = set()


def warn_once(message: str) -> None:
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
    """Release numbers only: dev/rc/post releases count as their release; unknown is outside."""
    v = parse_version(version)
    if v is None:
        return False
    return SpecifierSet(supported).contains(Version(v.base_version), prereleases=True)


def vllm_version() -> str | None:
    try:
        import vllm
    except Exception:
        return None
    return str(getattr(vllm, "__version__", "unknown"))
