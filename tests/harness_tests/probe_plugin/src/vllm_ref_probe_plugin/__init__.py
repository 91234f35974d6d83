"""Test-only general plugins: one that records its registration, one that raises."""

import os

REGISTERED: list[str] = []


def register() -> None:
    REGISTERED.append("ok")


def register_skip() -> None:
    REGISTERED.append("skip")


def register_boom() -> None:
    if os.environ.get("REF_PROBE_BOOM") == "1":
        raise RuntimeError("boom from the probe test plugin")


def registered() -> list[str]:
    """Probe check: what registered in this process."""
    return list(REGISTERED)


def platform() -> str | None:
    """A Ray-capable CPU platform, active only when REF_PROBE_PLATFORM=1."""
    if os.environ.get("REF_PROBE_PLATFORM") != "1":
        return None
    return "vllm_ref_probe_plugin.ray_platform.RayCpuPlatform"


def platform_name() -> str | None:
    """Probe check: the class name of the resolved platform, once resolved."""
    import sys

    mod = sys.modules.get("vllm.platforms")
    resolved = getattr(mod, "_current_platform", None) if mod else None
    return type(resolved).__name__ if resolved is not None else None
