"""A minimal vLLM endpoint plugin: one route on the OpenAI-compatible server.

vLLM calls the `vllm.endpoint_plugins` entry point (a zero-argument factory) in the API server
only, and only when VLLM_PLUGINS names it. The object it returns has a `name`, the
`required_tasks` it needs (None: any), `attach_router(app)` and `async init_state(engine_client,
state, args)`. Nothing here imports vLLM or FastAPI at module level.
"""

# No `from __future__ import annotations` here: FastAPI resolves a route's parameter types at
# definition time, and Request is imported inside attach_router (not at module level).
from typing import Any

from ._gate import check_vllm

PLUGIN = "example_endpoint_plugin"
SUPPORTED_VLLM = ">=0.28,<0.34"  # override: EXAMPLE_ENDPOINT_PLUGIN_ANY_VERSION=1
PATH = "/v1/example/model"  # under /v1: vLLM's --api-key check covers /v1, /v2, /inference, /cohere only
_attached = {"routes": False}


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
    return ExampleEndpoint(active=check_vllm(PLUGIN, SUPPORTED_VLLM))


def status() -> dict:
    """{"effect": the route is attached in this process} (cheap, no imports)."""
    return {"effect": _attached["routes"]}
