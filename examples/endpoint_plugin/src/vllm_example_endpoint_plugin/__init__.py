"""A minimal vLLM endpoint plugin: one route on the OpenAI-compatible server.

vLLM calls the `vllm.endpoint_plugins` entry point (a zero-argument factory) in the API server
only, and only when VLLM_PLUGINS names it. The object it returns has a `name`, the
`required_tasks` it needs (None: any), `attach_router(app)` and `async init_state(engine_client,
state, args)`. Nothing here imports vLLM or FastAPI at module level.
"""

# No `from __future__ import annotations` here: FastAPI resolves a route's parameter types at
# definition time, and Request is imported inside attach_router (not at module level).
import logging
import os
from typing import Any

from packaging.specifiers import SpecifierSet

PLUGIN = "example_endpoint_plugin"
SUPPORTED_VLLM = ">=0.28,<0.34"  # the vLLM releases this plugin was tested on
ANY_VERSION_ENV = "EXAMPLE_ENDPOINT_PLUGIN_ANY_VERSION"  # =1: attach the route on any release
PATH = "/v1/example/model"  # under /v1: vLLM's --api-key check covers /v1, /v2, /inference, /cohere only
_attached = {"routes": False}
logger = logging.getLogger(f"vllm.{PLUGIN}")


def vllm_supported() -> bool:
    """Whether this server runs a vLLM in SUPPORTED_VLLM (or ANY_VERSION_ENV=1 says to go
    ahead anyway); outside the range, one warning that names the way out."""
    try:
        from vllm import __version__ as version
    except ImportError:
        return False  # not inside vLLM: nothing to attach to
    # prereleases=True: a dev build of a tested release counts as that release.
    if SpecifierSet(SUPPORTED_VLLM).contains(version, prereleases=True) or os.environ.get(ANY_VERSION_ENV) == "1":
        return True
    logger.warning("%s: vLLM %s is outside the tested range %s; attaching no route. Set %s=1 to attach it anyway.",
                   PLUGIN, version, SUPPORTED_VLLM, ANY_VERSION_ENV)
    return False


class ExampleEndpoint:
    name = PLUGIN
    required_tasks = None

    def __init__(self, active: bool):
        self.active = active  # outside the supported range: attach nothing (vLLM needs an object)

    def attach_router(self, app: Any) -> None:
        if not self.active:
            return
        from fastapi import Request

        @app.get(PATH)
        async def model(request: Request) -> dict[str, Any]:
            engine = request.app.state.example_engine
            if engine is None:  # the CPU-only render server has no engine
                return {"plugin": PLUGIN, "engine": False}
            config = engine.model_config
            return {"plugin": PLUGIN, "engine": True, "max_model_len": config.max_model_len,
                    "dtype": str(config.dtype).removeprefix("torch.")}

        _attached["routes"] = True

    async def init_state(self, engine_client: Any, state: Any, args: Any) -> None:
        # Keep what the routes need; reach the engine only through this client.
        state.example_engine = engine_client


def endpoint() -> ExampleEndpoint:
    """The entry point."""
    return ExampleEndpoint(active=vllm_supported())


def status() -> dict:
    """{"effect": the route is attached in this process} (cheap, no imports)."""
    return {"effect": _attached["routes"]}
