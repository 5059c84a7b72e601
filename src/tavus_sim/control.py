"""Test control API under ``/_sim``.

It has **no authentication**: the simulator is a development and test tool and must never
face untrusted networks. Endpoints:

- ``GET /_sim/conversations``: every conversation (including ended and deleted ones) with
  context, properties, participants, transcript, events and deliveries, plus counts
  ``created_total`` (conversations ever created), ``create_requests`` (authenticated
  ``POST /v2/conversations`` calls, whatever their outcome), ``active``, and ``creates``
  (the ledger of those calls).
- ``GET /_sim/conversations/{id}``: one of them (404 if unknown).
- ``POST /_sim/conversations/{id}/shutdown`` ``{"reason"}``: force a shutdown with any reason
  (409 if not active).
- ``GET|POST|DELETE /_sim/faults``: list, add (body: a :class:`FaultRule`), clear.
- ``GET|PUT /_sim/config``: read, or change any :class:`SimConfig` field at runtime (partial).
- ``GET /_sim/memory``: every Memory Store (with its memories) and every legacy memory tag.
- ``GET /_sim/tool-calls[?conversation_id=]``: every request sent to a tool's endpoint, in
  order: ``{tool_calls: [{tool_call_id, tool_id, tool, trigger_type, conversation_id, url,
  method, body, fault, status, response, error, at}]}`` (tool_calls.py).
- ``POST /_sim/drain`` ``{"timeout_s"?}``: wait until all queued callbacks were delivered and
  every post-call action has run.
- ``POST /_sim/reset``: forget conversations, ledger, memories, created personas/replicas,
  tools and tool calls, and faults; restore the start config.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tavus_sim.config import SimConfig
from tavus_sim.faults import FaultRule
from tavus_sim.responses import JSONResponse
from tavus_sim.runtime import get_runtime
from tavus_sim.state import Conversation, isoformat

router = APIRouter(prefix="/_sim")


class ShutdownBody(BaseModel):
    """Body of ``POST /_sim/conversations/{id}/shutdown``."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1)


class DrainBody(BaseModel):
    """Body of ``POST /_sim/drain``."""

    model_config = ConfigDict(extra="forbid")
    timeout_s: float = Field(default=5.0, gt=0, le=60)


def sim_conversation_json(conversation: Conversation) -> dict[str, Any]:
    """Return everything the simulator knows about a conversation."""
    transcript = (
        conversation.final_transcript
        if conversation.final_transcript is not None
        else conversation.transcript
    )
    timings = conversation.timings
    return {
        "conversation_id": conversation.conversation_id,
        "conversation_name": conversation.conversation_name,
        "conversation_url": conversation.conversation_url,
        "callback_url": conversation.callback_url,
        "status": conversation.status,
        "test_mode": conversation.test_mode,
        "persona_id": conversation.persona_id,
        "replica_id": conversation.replica_id,
        "conversational_context": conversation.conversational_context,
        "custom_greeting": conversation.custom_greeting,
        "properties": conversation.properties,
        "timings": {
            "max_call_duration": timings.max_call_duration,
            "participant_left_timeout": timings.participant_left_timeout,
            "participant_absent_timeout": timings.participant_absent_timeout,
        },
        "max_participants": conversation.max_participants,
        "meeting_token": conversation.meeting_token,
        "perception_model": conversation.perception_model,
        "participant_tags": conversation.participant_tags,
        "memory_stores": conversation.memory_tags,
        "memory_store_id": conversation.memory_store_id,
        "extra_fields": conversation.extra_fields,
        "created_at": isoformat(conversation.created_at),
        "updated_at": isoformat(conversation.updated_at),
        "replica_joined_at": _iso_or_none(conversation.replica_joined_at),
        "ended_at": _iso_or_none(conversation.ended_at),
        "shutdown_reason": conversation.shutdown_reason,
        "participants": [
            participant.to_json() for participant in conversation.participants.values()
        ],
        "transcript": [entry.to_json() for entry in transcript],
        "events": conversation.events,
        "deliveries": [delivery.to_json() for delivery in conversation.deliveries],
    }


def _iso_or_none(value: Any) -> str | None:
    return None if value is None else isoformat(value)


def _unprocessable(exc: ValidationError) -> JSONResponse:
    # exc.json() makes any non-JSON context values (exceptions) printable.
    return JSONResponse({"detail": json.loads(exc.json(include_url=False))}, status_code=422)


@router.get("/conversations")
async def list_all(request: Request) -> dict[str, Any]:
    """Return all conversations, the create ledger and the counts."""
    state = get_runtime(request).state
    return {
        "created_total": state.created_total(),
        "create_requests": len(state.ledger),
        "active": state.active_count(),
        "conversations": [sim_conversation_json(c) for c in state.conversations.values()],
        "creates": [record.to_json() for record in state.ledger],
    }


@router.get("/conversations/{conversation_id}")
async def get_one(request: Request, conversation_id: str) -> Response:
    """Return one conversation, deleted or not."""
    conversation = get_runtime(request).state.conversations.get(conversation_id)
    if conversation is None:
        return JSONResponse({"message": "unknown conversation"}, status_code=404)
    return JSONResponse(sim_conversation_json(conversation))


@router.post("/conversations/{conversation_id}/shutdown")
async def force_shutdown(request: Request, conversation_id: str, body: ShutdownBody) -> Response:
    """Shut a conversation down with any reason, as Tavus's side would."""
    runtime = get_runtime(request)
    conversation = runtime.state.conversations.get(conversation_id)
    if conversation is None:
        return JSONResponse({"message": "unknown conversation"}, status_code=404)
    if not await runtime.lifecycle.shutdown(conversation, body.reason):
        return JSONResponse({"message": "conversation is not active"}, status_code=409)
    return JSONResponse(sim_conversation_json(conversation))


@router.get("/memory")
async def memory(request: Request) -> dict[str, Any]:
    """Return every Memory Store and legacy memory tag, with their memories."""
    bank = get_runtime(request).memory
    return {
        "memory_stores": [store.to_json() for store in bank.stores.values()],
        "legacy_tags": bank.legacy_json(),
    }


@router.get("/tool-calls")
async def tool_calls(request: Request) -> dict[str, Any]:
    """Return every call made to a tool's endpoint, optionally for one conversation."""
    wanted = request.query_params.get("conversation_id")
    calls = get_runtime(request).caller.calls
    return {
        "tool_calls": [
            call.to_json() for call in calls if wanted is None or call.conversation_id == wanted
        ]
    }


@router.get("/faults")
async def list_faults(request: Request) -> dict[str, Any]:
    """Return the pending fault rules."""
    return {"faults": get_runtime(request).faults.pending()}


@router.post("/faults", status_code=201)
async def add_fault(request: Request, rule: FaultRule) -> dict[str, Any]:
    """Queue a fault rule."""
    faults = get_runtime(request).faults
    faults.add(rule)
    return {"faults": faults.pending()}


@router.delete("/faults", status_code=204)
async def clear_faults(request: Request) -> Response:
    """Drop every pending fault rule."""
    get_runtime(request).faults.clear()
    return Response(status_code=204)


@router.get("/config")
async def read_config(request: Request) -> dict[str, Any]:
    """Return the current config."""
    return get_runtime(request).config.model_dump()


@router.put("/config")
async def change_config(request: Request, changes: dict[str, Any]) -> Response:
    """Change some config fields; the rest keep their current values."""
    unknown = sorted(set(changes) - set(SimConfig.model_fields))
    if unknown:
        return JSONResponse({"detail": f"unknown config fields: {unknown}"}, status_code=422)
    try:
        updated = get_runtime(request).update_config(changes)
    except ValidationError as exc:
        return _unprocessable(exc)
    return JSONResponse(updated.model_dump())


@router.post("/drain")
async def drain(request: Request, body: DrainBody | None = None) -> dict[str, Any]:
    """Wait until every post-call action and queued callback delivery has finished (or the
    timeout passed)."""
    runtime = get_runtime(request)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + (body or DrainBody()).timeout_s
    # Post-call actions first: each ends by queueing a callback.
    idle = await runtime.caller.drain(deadline - loop.time())
    idle = idle and await runtime.sender.drain(max(0.0, deadline - loop.time()))
    return {"idle": idle, "pending": runtime.sender.pending + runtime.caller.pending}


@router.post("/reset", status_code=204)
async def reset(request: Request) -> Response:
    """Forget everything and restore the config the simulator was started with."""
    await get_runtime(request).reset()
    return Response(status_code=204)
