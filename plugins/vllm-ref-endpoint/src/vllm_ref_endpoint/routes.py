"""The HTTP half: routes under /v1/ref/ on vLLM's OpenAI-compatible API server.

- GET /v1/ref/plugins: every vLLM process of this server (the API server itself, each engine
  core, each worker) with every installed entry point of every vllm.* group, as that process
  sees it (vllm_ref_common.inventory).
- GET /v1/ref/scheduler/tenants: the fair-share policy's tenants, weights and virtual service.
- PUT /v1/ref/scheduler/weights: new weights, used from the next admission on. Off unless
  REF_ENDPOINT_WRITE=1.

Responses are pydantic models, so /openapi.json carries their JSON schema. Errors are
{"detail": "..."} with a message that names the plugin, the field and what is accepted.
"""

from __future__ import annotations

import os
from argparse import Namespace
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Request
from pydantic import BaseModel
from vllm_ref_common import TRUE_VALUES, env_flag, warn_once

from . import PLUGIN, PREFIX, STATE, WRITE_ENV


class EntryPoint(BaseModel):
    group: str
    name: str
    value: str
    distribution: str | None
    version: str | None
    filtered: bool  # VLLM_PLUGINS keeps vLLM from loading it
    imported: bool  # its module is imported in this process
    settings_set: list[str] | None = None  # vllm-ref plugins: names of their settings that are set
    status: dict[str, Any] | None = None  # vllm-ref plugins: their status() here, where imported


class Process(BaseModel):
    pid: int
    role: str  # front_end | engine_core | worker | registry | other (vllm_ref_common.roles)
    rank: int | None
    ray: bool
    roles: list[str]
    vllm_version: str | None
    vllm_plugins: list[str] | None
    unknown_names: list[str]  # in VLLM_PLUGINS, but no installed entry point has that name
    entry_points: list[EntryPoint]


class PluginsReport(BaseModel):
    processes: list[Process]


class Tenant(BaseModel):
    weight: float
    virtual_service: float  # tokens scheduled for it, per unit of weight
    waiting: int


class Tenants(BaseModel):
    clock: float
    weights: dict[str, float]
    tenants: dict[str, Tenant]


def _engine(request: Request) -> Any:
    client = getattr(request.app.state, "ref_endpoint_engine", None)
    if client is None:  # the CPU-only render server has no engine
        raise HTTPException(503, f"{PLUGIN}: this server has no engine to report on.")
    return client


async def _engine_cores(client: Any, method: str, *args: Any) -> list[Any]:
    core = client.engine_core
    call_all = getattr(core, "call_utility_all_async", None)  # one answer per data-parallel engine
    if call_all is not None:
        return list(await call_all(method, *args))
    return [await core.call_utility_async(method, *args)]


def _inactive(where: str) -> HTTPException:
    return HTTPException(409, f"{PLUGIN}: ref_scheduler's fair-share policy is not active in {where} "
                              f"(not installed, not named in VLLM_PLUGINS, not selected by REF_PATCHES, or "
                              f"outside its vLLM range), so there are no tenants to show or weigh.")


def _weights_text(body: Any) -> str:
    """The body of PUT .../weights as REF_SCHEDULER_WEIGHTS text; HTTPException(400) if bad.

    Every weight is checked here by the scheduler's own rule (check_weight, the one that reads
    REF_SCHEDULER_WEIGHTS too), before anything is sent to the engine."""
    try:
        from vllm_ref_scheduler.fair_share import MAX_WEIGHTED_TENANTS, WEIGHT_RULE, check_weight, shown
    except ImportError:
        raise _inactive("this server (vllm-ref-scheduler is not installed, or a version without check_weight)") \
            from None
    accepted = (f'a JSON object {{"weights": {{TENANT: WEIGHT, ...}}}} with 1 to {MAX_WEIGHTED_TENANTS} '
                f'tenants, weights as JSON numbers or as text such as "1/3"; {WEIGHT_RULE}')
    weights = body.get("weights") if isinstance(body, dict) else None
    if not isinstance(weights, dict) or not weights or set(body) != {"weights"} \
            or len(weights) > MAX_WEIGHTED_TENANTS:
        raise HTTPException(400, f"{PLUGIN}: field 'weights' is missing, not an object, empty or too large; "
                                 f"accepted: {accepted}.")
    items = []
    for tenant, weight in weights.items():
        try:
            # JSON's own types only: the text form of anything else could mean something else.
            if isinstance(weight, bool) or not isinstance(weight, (int, float, str)):
                raise ValueError(type(weight).__name__)
            exact = check_weight(tenant, weight, source="field 'weights'")
        except ValueError:
            name = tenant if len(tenant) <= 64 and tenant.isprintable() else shown(tenant, 40)
            raise HTTPException(400, f"{PLUGIN}: field 'weights.{name}' = {shown(weight)} is invalid; "
                                     f"accepted: {accepted}.") from None
        items.append(f"{tenant}={exact}")  # exact: "3", "1/3"; parsed back to the same fraction
    return ",".join(items)


def router() -> APIRouter:
    r = APIRouter(prefix=PREFIX, tags=["vllm-ref"])

    @r.get("/plugins", response_model=PluginsReport)
    async def plugins(request: Request) -> dict[str, Any]:
        from vllm_ref_common.inventory import process_report

        client = _engine(request)
        cores = await _engine_cores(client, "ref_endpoint_report")
        workers = await client.collective_rpc("ref_endpoint_report")
        return {"processes": [process_report(), *cores, *workers]}

    @r.get("/scheduler/tenants", response_model=Tenants)
    async def tenants(request: Request) -> dict[str, Any]:
        found = [t for t in await _engine_cores(_engine(request), "ref_endpoint_tenants") if t is not None]
        if not found:
            raise _inactive("the engine core")
        return found[0]

    @r.put("/scheduler/weights", response_model=Tenants)
    async def weights(request: Request) -> dict[str, Any]:
        writable = env_flag(WRITE_ENV)
        if writable is None:
            warn_once(f"{PLUGIN}: {WRITE_ENV}={os.environ.get(WRITE_ENV)!r} is not understood; accepted: "
                      f"{'/'.join(TRUE_VALUES)} to enable write routes. They stay disabled.")
        if not writable:
            raise HTTPException(403, f"{PLUGIN}: write routes are disabled; set {WRITE_ENV}=1 in the server's "
                                     f"environment to enable PUT {PREFIX}/scheduler/weights.")
        try:
            body = await request.json()
        except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested deeper than json parses
            body = None
        text = _weights_text(body)
        found = [t for t in await _engine_cores(_engine(request), "ref_endpoint_set_weights", text) if t]
        if not found:
            raise _inactive("the engine core")
        return found[0]

    return r


class RefEndpointPlugin:
    """What vLLM's endpoint-plugin loader wants: a name, the tasks it needs, two hooks."""

    name = PLUGIN
    required_tasks = None  # any server with an engine; the render server gets 503s

    def __init__(self, active: bool = True):
        self.active = active  # False outside the supported vLLM range: attach nothing

    def attach_router(self, app: FastAPI) -> None:
        if self.active:
            app.include_router(router())
            STATE["routes"] = True

    async def init_state(self, engine_client: Any, state: Any, args: Namespace) -> None:
        state.ref_endpoint_engine = engine_client
