"""vllm-ref-endpoint: what loaded where, and the fair-share weights, over the server's HTTP API.

One package, two entry points named `ref_endpoint`, so `VLLM_PLUGINS=ref_endpoint` enables both:
- `vllm.general_plugins` -> `register()`: in the engine core and every worker it adds the
  methods the routes call (engine.py), through the repository's patching framework;
- `vllm.endpoint_plugins` -> `endpoint()`: in the API server it attaches the routes under
  `/v1/ref/` (routes.py), which reach those methods only through vLLM's own EngineClient
  (`collective_rpc` for workers, engine-core utility calls), as vLLM's endpoint interface asks.

Nothing here imports vLLM or FastAPI at module level, so `status()` reads from any process.
"""

from __future__ import annotations

import sys
from typing import Any

from vllm_ref_common import any_version_env, check_vllm, gate_verdict, setting

PLUGIN = "ref_endpoint"
SUPPORTED_VLLM = ">=0.28,<0.34"  # as measured: docs/compatibility.md
ANY_VERSION_ENV = any_version_env(PLUGIN)
WRITE_ENV = setting(PLUGIN, "write")  # REF_ENDPOINT_WRITE=1 enables the write routes
PREFIX = "/v1/ref"  # under /v1: vLLM's --api-key check guards exactly /v1, /v2, /inference, /cohere
# What this process did, for status(), written where it happens: routes.py attaches the routes.
STATE: dict[str, Any] = {"routes": False}

__all__ = ["ANY_VERSION_ENV", "PLUGIN", "PREFIX", "STATE", "SUPPORTED_VLLM", "WRITE_ENV", "endpoint", "register",
           "status"]


def register() -> None:
    """vLLM general-plugin entry point: the engine-side methods, in the engine core and workers."""
    if not check_vllm(PLUGIN, SUPPORTED_VLLM):
        return
    from vllm_ref_common.patching import apply_selected

    from .engine import PATCHES

    apply_selected(PATCHES)


def endpoint() -> Any:
    """vLLM endpoint-plugin entry point (a zero-argument factory). Outside the supported range
    the plugin it returns attaches nothing: vLLM would fail on anything that is not a plugin."""
    from .routes import RefEndpointPlugin

    return RefEndpointPlugin(active=check_vllm(PLUGIN, SUPPORTED_VLLM))


def status() -> dict[str, Any]:
    """What this plugin did in this process; cheap, imports nothing, safe from any thread.

    {"effect": the routes are attached here (API server) or the engine-side methods are
    installed here (engine core, workers), "routes": bool, "engine": bool, "worker": bool,
    "gate": the version gate's verdict (None where neither entry point ran)}.
    """
    engine = sys.modules.get(f"{__name__}.engine")
    done = {"routes": STATE["routes"],
            "engine": bool(engine and engine.EngineMethods.installed()),
            "worker": bool(engine and engine.WorkerMethods.installed())}
    return {"effect": any(done.values()), **done, "gate": gate_verdict(PLUGIN)}
