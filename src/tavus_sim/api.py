"""The simulated Tavus conversation API, mounted at ``/v2`` (the conversation routes, whole).

Every call: ``latency_ms`` wait and ``x-api-key`` check (gate.py) → fault rules (faults.py)
→ the operation. Query parameters and bodies are parsed by hand so that bad input gets
Tavus-style 400 bodies rather than FastAPI's 422.

Choices where Tavus documents nothing:

- Create accepts fields it does not know, at the top level and in ``properties`` (Tavus's own
  CLI sends ``chat`` and ``meeting_url``; integrations send ``properties.enable_transcription``),
  and keeps them for ``/_sim``; every documented field is still type-checked and a malformed
  one is a 400.
- A create naming a persona or replica the account does not have is adopted or refused per
  ``SimConfig.unknown_ids`` (catalog.py); a replica still training is refused. A replica-only
  create uses the default persona (``SimConfig.default_persona_id``); a persona-only create
  the persona's default replica.
- ``POST …/end`` on an already ended conversation answers 200, like a first end
  (idempotent success). Its body is the plain text ``OK``: the reference gives no body
  schema, so a client must not depend on it.
- ``DELETE`` of an active conversation first shuts it down with the documented reason
  ``daily_room_has_been_deleted``. Soft-deleted conversations disappear from the API (400
  ``Invalid conversation_id``) but stay visible under ``/_sim``; ``?hard=true`` removes them.
- Test-mode conversations are validated like live ones, answered ``status: "ended"``, hold no
  concurrency slot, start no timers, generate no callbacks and touch no memory store.

The conversation routes are kept whole in this one module (hence its length); catalog, memory
and tool routes live in their own modules.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from tavus_sim.catalog import UnknownId
from tavus_sim.faults import CONCURRENCY_LIMIT_BODY
from tavus_sim.gate import account_of
from tavus_sim.handling import (
    ApiError,
    bool_param,
    fault_response,
    guarded,
    int_param,
    parse_body,
    parsed_json,
)
from tavus_sim.responses import JSONResponse
from tavus_sim.runtime import SimRuntime, get_runtime
from tavus_sim.state import (
    Conversation,
    CreateRecord,
    Timings,
    isoformat,
    new_conversation_id,
    utcnow,
)

router = APIRouter(prefix="/v2")

INVALID_CONVERSATION_BODY = {"error": "Invalid conversation_id"}

NonEmptyStr = Annotated[str, StringConstraints(min_length=1)]


class CreateProperties(BaseModel):
    """``properties`` of a create request. Unknown keys are kept."""

    model_config = ConfigDict(extra="allow", strict=True)

    max_call_duration: int | None = Field(default=None, ge=1)
    participant_left_timeout: int | None = Field(default=None, ge=0)
    participant_absent_timeout: int | None = Field(default=None, ge=1)
    enable_recording: bool | None = None
    enable_closed_captions: bool | None = None
    apply_greenscreen: bool | None = None
    language: str | None = None
    recording_s3_bucket_name: str | None = None
    recording_s3_bucket_region: str | None = None
    aws_assume_role_arn: str | None = None
    recording_storage: dict[str, Any] | None = None
    livekit_ws_url: str | None = None
    livekit_room_token: str | None = None
    # Seen in integrations, not in the API reference: typed when present.
    enable_transcription: bool | None = None
    auto_start_recording: bool | None = None
    languages: list[str] | None = None


class CreateBody(BaseModel):
    """Body of ``POST /v2/conversations``, with the PAL/Face aliases of the ids.

    Unknown keys are accepted and kept (``model_extra``).
    """

    model_config = ConfigDict(extra="allow", strict=True)

    replica_id: NonEmptyStr | None = None
    persona_id: NonEmptyStr | None = None
    face_id: NonEmptyStr | None = None
    pal_id: NonEmptyStr | None = None
    audio_only: bool | None = None
    callback_url: str | None = None
    conversation_name: str | None = None
    conversational_context: str | None = None
    custom_greeting: str | None = None
    enable_dynamic_greeting: bool | None = None
    #: Memory Stores: one participant tag per conversation today.
    participant_tags: list[NonEmptyStr] | None = Field(default=None, max_length=1)
    #: Legacy memory tags.
    memory_stores: list[NonEmptyStr] | None = None
    document_ids: list[str] | None = None
    document_retrieval_strategy: Literal["speed", "quality", "balanced"] | None = None
    document_tags: list[str] | None = None
    test_mode: bool | None = None
    require_auth: bool | None = None
    max_participants: int | None = Field(default=None, ge=2)
    policy: Literal["eu"] | None = None
    properties: CreateProperties | None = None
    # Sent by Tavus's CLI, not in the API reference: typed when present.
    chat: bool | None = None
    meeting_url: str | None = None


# ---------------------------------------------------------------------- rendering


def conversation_json(conversation: Conversation) -> dict[str, Any]:
    """Return a conversation as ``GET /v2/conversations/{id}`` shows it (G1 fields)."""
    return {
        "conversation_id": conversation.conversation_id,
        "conversation_name": conversation.conversation_name,
        "conversation_url": conversation.conversation_url,
        "callback_url": conversation.callback_url,
        "status": conversation.status,
        "replica_id": conversation.replica_id,
        "persona_id": conversation.persona_id,
        "created_at": isoformat(conversation.created_at),
        "updated_at": isoformat(conversation.updated_at),
    }


def verbose_conversation_json(conversation: Conversation) -> dict[str, Any]:
    """Return the ``?verbose=true`` view: adds ``events`` and, once known, the shutdown
    reason and the transcript at top level."""
    out = conversation_json(conversation)
    out["events"] = [
        {key: value for key, value in event.items() if key != "webhook_url"}
        for event in conversation.events
    ]
    if conversation.shutdown_reason is not None:
        out["shutdown_reason"] = conversation.shutdown_reason
    if conversation.final_transcript is not None:
        out["transcript"] = [entry.to_json() for entry in conversation.final_transcript]
    return out


# ---------------------------------------------------------------------- helpers


def _one_of(primary: str | None, alias: str | None, names: str) -> str | None:
    if primary is not None and alias is not None and primary != alias:
        raise ApiError(f"{names} name different ids")
    return primary if primary is not None else alias


def _absolute_http_url(value: str, name: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ApiError(f"{name} must be an absolute http(s) URL")
    return value


def _meeting_token(conversation_id: str, api_key: str, ttl_s: int) -> str:
    """Return a JWT-shaped token; only the simulator's room page checks it (by equality)."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = {"r": conversation_id, "exp": int(time.time()) + ttl_s}
    payload = b64(json.dumps(claims).encode())
    signature = hmac.new(api_key.encode(), f"{header}.{payload}".encode(), hashlib.sha256)
    return f"{header}.{payload}.{b64(signature.digest())}"


def _timings(runtime: SimRuntime, properties: dict[str, Any]) -> Timings:
    config = runtime.config
    max_call = properties.get("max_call_duration", config.default_max_call_duration)
    if config.max_call_duration_cap is not None:
        # Tavus is reported to lower values above the plan's cap silently.
        max_call = min(max_call, config.max_call_duration_cap)
    return Timings(
        max_call_duration=max_call,
        participant_left_timeout=properties.get(
            "participant_left_timeout", config.default_participant_left_timeout
        ),
        participant_absent_timeout=properties.get(
            "participant_absent_timeout", config.default_participant_absent_timeout
        ),
    )


def _mentor(runtime: SimRuntime, body: CreateBody) -> tuple[str, str, str | None]:
    """(persona id, replica id, the persona's perception model) of a create, or ``ApiError``."""
    config = runtime.config
    catalog = runtime.catalog
    adopt = config.unknown_ids == "adopt"
    persona_id = _one_of(body.persona_id, body.pal_id, "persona_id and pal_id")
    replica_id = _one_of(body.replica_id, body.face_id, "replica_id and face_id")
    if persona_id is None and replica_id is None:
        raise ApiError(
            "Each request must have a valid replica_id value that's either directly "
            "passed in or as part of a persona"
        )
    try:
        persona = (
            catalog.persona(persona_id, adopt=adopt, default_replica_id=config.default_replica_id)
            if persona_id is not None
            # Tavus: with only a replica_id, "the default Tavus persona will be used".
            else catalog.persona(
                config.default_persona_id,
                adopt=True,
                default_replica_id=config.default_replica_id,
            )
        )
        replica_id = replica_id or persona.default_replica_id
        if replica_id is None:
            raise ApiError(
                f"persona_id {persona.persona_id} has no default replica: pass a replica_id"
            )
        replica = catalog.replica(replica_id, adopt=adopt)
    except UnknownId as exc:
        raise ApiError(str(exc)) from None
    if not replica.ready:
        raise ApiError(f"replica_id {replica.replica_id} is not ready (status: {replica.status})")
    return persona.persona_id, replica.replica_id, persona.perception_model


# ---------------------------------------------------------------------- create


async def _create(request: Request, runtime: SimRuntime, raw: bytes) -> tuple[Response, str | None]:
    config = runtime.config
    state = runtime.state
    try:
        body = parse_body(CreateBody, raw)
        callback_url = body.callback_url or ""
        if callback_url:
            _absolute_http_url(callback_url, "callback_url")
        if body.meeting_url is not None:
            _absolute_http_url(body.meeting_url, "meeting_url")
        async with state.lock:
            persona_id, replica_id, perception_model = _mentor(runtime, body)
    except ApiError as exc:
        return exc.response(), None

    test_mode = body.test_mode is True
    properties = body.properties.model_dump(exclude_none=True) if body.properties else {}
    timings = _timings(runtime, properties)
    async with state.lock:
        limit = config.concurrency_limit
        if not test_mode and limit is not None and state.active_count() >= limit:
            return JSONResponse(CONCURRENCY_LIMIT_BODY, status_code=400), None
        conversation_id = new_conversation_id()
        while conversation_id in state.conversations:
            conversation_id = new_conversation_id()
        now = utcnow()
        base_url = (config.conversation_url_base or str(request.base_url)).rstrip("/")
        conversation = Conversation(
            conversation_id=conversation_id,
            conversation_name=body.conversation_name or f"New Conversation {isoformat(now)}",
            conversation_url=f"{base_url}/rooms/{conversation_id}",
            callback_url=callback_url,
            persona_id=persona_id,
            replica_id=replica_id,
            conversational_context=body.conversational_context or "",
            custom_greeting=body.custom_greeting or None,
            properties=properties,
            timings=timings,
            test_mode=test_mode,
            max_participants=body.max_participants,
            meeting_token=(
                _meeting_token(conversation_id, config.api_key, timings.participant_absent_timeout)
                if body.require_auth
                else None
            ),
            created_at=now,
            updated_at=now,
            status="ended" if test_mode else "active",
            perception_model=perception_model,
            participant_tags=list(body.participant_tags or []),
            memory_tags=list(body.memory_stores or []),
            extra_fields=dict(body.model_extra or {}),
            account=account_of(request),
        )
        state.conversations[conversation_id] = conversation
        runtime.memory.attach(conversation)
    runtime.lifecycle.started(conversation)
    answer: dict[str, Any] = {
        "conversation_id": conversation.conversation_id,
        "conversation_name": conversation.conversation_name,
        "conversation_url": conversation.conversation_url,
        "status": conversation.status,
        "callback_url": conversation.callback_url,
        "created_at": isoformat(conversation.created_at),
    }
    if conversation.meeting_token is not None:
        answer["meeting_token"] = conversation.meeting_token
    return JSONResponse(answer), conversation_id


@router.post("/conversations")
async def create_conversation(request: Request) -> Response:
    """Create a conversation; it starts at once (replica join and timers)."""
    runtime = get_runtime(request)
    raw = await request.body()
    record = CreateRecord(at=utcnow(), request=parsed_json(raw))
    runtime.state.ledger.append(record)
    rule = runtime.faults.take("create")
    if rule is not None:
        record.fault = rule.kind
    if rule is not None and not rule.apply_first:
        response = await fault_response(request, runtime, rule, None)
    else:
        response, record.conversation_id = await _create(request, runtime, raw)
        if rule is not None:
            response = await fault_response(request, runtime, rule, response)
    dropped = rule is not None and rule.kind == "drop_connection"
    record.status_code = None if dropped else response.status_code
    return response


# ---------------------------------------------------------------------- read


@router.get("/conversations/{conversation_id}")
async def get_conversation(request: Request, conversation_id: str) -> Response:
    """Return one conversation; ``?verbose=true`` adds its events and transcript."""

    async def action(runtime: SimRuntime) -> Response:
        verbose = bool_param(request, "verbose")
        conversation = runtime.state.visible(conversation_id)
        if conversation is None:
            return JSONResponse(INVALID_CONVERSATION_BODY, status_code=400)
        if verbose:
            return JSONResponse(verbose_conversation_json(conversation))
        return JSONResponse(conversation_json(conversation))

    return await guarded(request, "get", action)


@router.get("/conversations")
async def list_conversations(request: Request) -> Response:
    """List conversations newest first: ``?limit=`` (10), ``?page=`` (1-based), ``?status=``."""

    async def action(runtime: SimRuntime) -> Response:
        limit = int_param(request, "limit", 10)
        page = int_param(request, "page", 1)
        status = request.query_params.get("status")
        if status is not None and status not in ("active", "ended"):
            raise ApiError("status must be active or ended")
        matching = [
            (index, conversation)
            for index, conversation in enumerate(runtime.state.conversations.values())
            if conversation.visible and (status is None or conversation.status == status)
        ]
        # Insertion order breaks ties between equal created_at values.
        matching.sort(key=lambda pair: (pair[1].created_at, pair[0]), reverse=True)
        window = matching[(page - 1) * limit : page * limit]
        return JSONResponse(
            {
                "data": [conversation_json(conversation) for _, conversation in window],
                "total_count": len(matching),
            }
        )

    return await guarded(request, "list", action)


# ---------------------------------------------------------------------- end / delete


@router.post("/conversations/{conversation_id}/end")
async def end_conversation(request: Request, conversation_id: str) -> Response:
    """End a conversation (reason ``end_conversation_endpoint_hit``); idempotent."""

    async def action(runtime: SimRuntime) -> Response:
        conversation = runtime.state.visible(conversation_id)
        if conversation is None:
            return JSONResponse(INVALID_CONVERSATION_BODY, status_code=400)
        await runtime.lifecycle.shutdown(conversation, "end_conversation_endpoint_hit")
        return PlainTextResponse("OK")

    return await guarded(request, "end", action)


@router.delete("/conversations/{conversation_id}")
async def delete_conversation(request: Request, conversation_id: str) -> Response:
    """Delete a conversation (soft, or ``?hard=true``), ending it first if active."""

    async def action(runtime: SimRuntime) -> Response:
        hard = bool_param(request, "hard")
        conversation = runtime.state.visible(conversation_id)
        if conversation is None:
            return JSONResponse(INVALID_CONVERSATION_BODY, status_code=400)
        await runtime.lifecycle.shutdown(conversation, "daily_room_has_been_deleted")
        async with runtime.state.lock:
            if hard:
                runtime.state.conversations.pop(conversation_id, None)
            else:
                conversation.status = "deleted"
                conversation.touch()
        return Response(status_code=204)

    return await guarded(request, "delete", action)
