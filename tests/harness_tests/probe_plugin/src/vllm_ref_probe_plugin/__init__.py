"""Test-only general plugins: one that records its registration, one that raises."""

import os

REGISTERED: list[str] = []


def register() -> None:
    REGISTERED.append("ok")


def register_skip() -> None:
    REGISTERED.append("skip")


def register_boom() -> None:
    if os.environ.get("VLLM_REF_PROBE_BOOM") == "1":
        raise RuntimeError("boom from the probe test plugin")


def registered() -> list[str]:
    """Probe check: what registered in this process."""
    return list(REGISTERED)
