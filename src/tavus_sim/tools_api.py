"""The simulated tool registry endpoints; the model is in tools.py, calling tools in
tool_calls.py.

- ``POST /v2/tools`` (a tool, see tools.py) → the tool with ``tool_id``.
- ``GET /v2/tools[?limit=&page=&name=&trigger_type=]`` → ``{data, total_count}`` (the
  ``name`` and ``trigger_type`` filters are the simulator's: a client for Tavus should filter
  the pages itself).
- ``GET /v2/tools/{tool_id}``; ``PATCH /v2/tools/{tool_id}`` (a JSON Patch array, or an object
  of fields to replace) → the tool; ``DELETE /v2/tools/{tool_id}`` → 204.
- ``POST /v2/pals/{pal_id}/tools`` ``{tool_ids: [...]}`` → ``{pal_id, data: [tools],
  total_count}`` (idempotent; at most 50 per PAL; an unknown tool id is a 400 and attaches
  nothing); ``GET /v2/pals/{pal_id}/tools`` → the same; ``DELETE
  /v2/pals/{pal_id}/tools/{tool_id}`` → 204. ``/v2/personas/{id}/tools`` is the same.

An unknown tool is ``404 {"message": "Tool not found"}``; an unknown PAL is adopted or a 404
per ``SimConfig.unknown_ids``, as on create.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from tavus_sim import json_patch
from tavus_sim.catalog import UnknownId
from tavus_sim.handling import ApiError, choice_param, describe, guarded, page_of, parse_body
from tavus_sim.responses import JSONResponse
from tavus_sim.runtime import SimRuntime
from tavus_sim.tools import MAX_TOOLS_PER_PAL, Tool, ToolBody, TooManyTools

router = APIRouter(prefix="/v2")


class AttachBody(BaseModel):
    """Body of ``POST /v2/pals/{pal_id}/tools``."""

    model_config = ConfigDict(extra="forbid", strict=True)
    tool_ids: list[Annotated[str, StringConstraints(min_length=1)]] = Field(
        min_length=1, max_length=MAX_TOOLS_PER_PAL
    )


def _tool(runtime: SimRuntime, tool_id: str) -> Tool:
    tool = runtime.tools.tools.get(tool_id)
    if tool is None:
        raise ApiError("Tool not found", status_code=404)
    return tool


def _pal(runtime: SimRuntime, pal_id: str) -> str:
    config = runtime.config
    try:
        runtime.catalog.persona(
            pal_id,
            adopt=config.unknown_ids == "adopt",
            default_replica_id=config.default_replica_id,
            field_name="pal_id",
        )
    except UnknownId:
        raise ApiError("PAL not found", status_code=404) from None
    return pal_id


def _validated(data: Any) -> ToolBody:
    try:
        # Through JSON so that strict validation sees what a request body would hold.
        return ToolBody.model_validate_json(json.dumps(data))
    except ValidationError as exc:
        raise ApiError(describe(exc)) from None


def _pal_tools(runtime: SimRuntime, pal_id: str) -> JSONResponse:
    tools = runtime.tools.of_pal(pal_id)
    return JSONResponse(
        {"pal_id": pal_id, "data": [tool.to_json() for tool in tools], "total_count": len(tools)}
    )


@router.post("/tools")
async def create_tool(request: Request) -> Response:
    """Register a tool."""
    raw = await request.body()

    async def action(runtime: SimRuntime) -> Response:
        tool = runtime.tools.add(parse_body(ToolBody, raw))
        return JSONResponse(tool.to_json())

    return await guarded(request, "tools", action)


@router.get("/tools")
async def list_tools(request: Request) -> Response:
    """A page of the account's tools, optionally by ``name`` and ``trigger_type``."""

    async def action(runtime: SimRuntime) -> Response:
        name = request.query_params.get("name")
        trigger = choice_param(request, "trigger_type", ("in_call", "post_call"))
        tools = [
            tool
            for tool in runtime.tools.tools.values()
            if (name is None or tool.name == name)
            and (trigger is None or tool.spec.trigger_type == trigger)
        ]
        return page_of(request, tools, Tool.to_json)

    return await guarded(request, "tools", action)


@router.get("/tools/{tool_id}")
async def get_tool(request: Request, tool_id: str) -> Response:
    """One tool (its secrets left out)."""

    async def action(runtime: SimRuntime) -> Response:
        return JSONResponse(_tool(runtime, tool_id).to_json())

    return await guarded(request, "tools", action)


@router.patch("/tools/{tool_id}")
async def update_tool(request: Request, tool_id: str) -> Response:
    """Change a tool: a JSON Patch, or an object of top-level fields to replace."""
    raw = await request.body()

    async def action(runtime: SimRuntime) -> Response:
        tool = _tool(runtime, tool_id)
        try:
            change = json.loads(raw)
        except ValueError:
            raise ApiError("Invalid request body: not JSON") from None
        current = tool.editable_json()
        if isinstance(change, list):
            try:
                updated = json_patch.apply(current, change)
            except json_patch.PatchError as exc:
                raise ApiError(f"Invalid patch: {exc}") from None
        elif isinstance(change, dict):
            updated = {**current, **change}
        else:
            raise ApiError("Invalid request body: a JSON Patch array or an object")
        runtime.tools.replace(tool, _validated(updated))
        return JSONResponse(tool.to_json())

    return await guarded(request, "tools", action)


@router.delete("/tools/{tool_id}")
async def delete_tool(request: Request, tool_id: str) -> Response:
    """Delete a tool; it is detached from every PAL."""

    async def action(runtime: SimRuntime) -> Response:
        runtime.tools.delete(_tool(runtime, tool_id).tool_id)
        return Response(status_code=204)

    return await guarded(request, "tools", action)


async def attach_tools(request: Request, pal_id: str) -> Response:
    """Attach tools to a PAL (attaching one twice changes nothing)."""
    raw = await request.body()

    async def action(runtime: SimRuntime) -> Response:
        body = parse_body(AttachBody, raw)
        _pal(runtime, pal_id)
        unknown = [tool_id for tool_id in body.tool_ids if tool_id not in runtime.tools.tools]
        if unknown:
            raise ApiError(f"Unknown tool_ids: {', '.join(unknown)}")
        try:
            runtime.tools.attach(pal_id, body.tool_ids)
        except TooManyTools:
            raise ApiError(f"A PAL can have at most {MAX_TOOLS_PER_PAL} tools") from None
        return _pal_tools(runtime, pal_id)

    return await guarded(request, "tools", action)


async def list_pal_tools(request: Request, pal_id: str) -> Response:
    """The tools attached to a PAL."""

    async def action(runtime: SimRuntime) -> Response:
        return _pal_tools(runtime, _pal(runtime, pal_id))

    return await guarded(request, "tools", action)


async def detach_tool(request: Request, pal_id: str, tool_id: str) -> Response:
    """Detach one tool from a PAL."""

    async def action(runtime: SimRuntime) -> Response:
        _pal(runtime, pal_id)
        if not runtime.tools.detach(pal_id, tool_id):
            raise ApiError("Tool not attached to this PAL", status_code=404)
        return Response(status_code=204)

    return await guarded(request, "tools", action)


for _collection in ("pals", "personas"):
    router.add_api_route(f"/{_collection}/{{pal_id}}/tools", attach_tools, methods=["POST"])
    router.add_api_route(f"/{_collection}/{{pal_id}}/tools", list_pal_tools, methods=["GET"])
    router.add_api_route(
        f"/{_collection}/{{pal_id}}/tools/{{tool_id}}", detach_tool, methods=["DELETE"]
    )
