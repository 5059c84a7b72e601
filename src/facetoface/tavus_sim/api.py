"""The simulated Tavus conversation API, mounted at ``/v2`` (tavus-api.md §2).

Every call: ``latency_ms`` wait → ``x-api-key`` check (401 ``{"message": "Invalid access
token"}``) → fault rules (faults.py) → the operation. Query parameters and bodies are parsed
by hand so that bad input gets Tavus-style 400 bodies rather than FastAPI's 422.

Choices where Tavus documents nothing (tavus-api.md says so):

- Create rejects unknown fields (top level and in ``properties``) with 400: the quickstart
  says a 400 usually means "customizations in the wrong place", and a typo should fail here
  rather than be silently ignored.
- ``POST …/end`` on an already ended conversation answers 200, like a first end
  (idempotent success). Its body is the plain text ``OK``: the reference gives no body
  schema, so a client must not depend on it.
- ``DELETE`` of an active conversation first shuts it down with the documented reason
  ``daily_room_has_been_deleted``. Soft-deleted conversations disappear from the API (400
  ``Invalid conversation_id``) but stay visible under ``/_sim``; ``?hard=true`` removes them.
- Test-mode conversations generate no callbacks and start no timers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from facetoface.tavus_sim.faults import (
    CONCURRENCY_LIMIT_BODY,
    DEFAULT_STATUS_BODY,
    GATEWAY_TIMEOUT_BODY,
    OUT_OF_CREDITS_BODY,
    FaultRule,
    drop_connection,
)
from facetoface.tavus_sim.runtime import SimRuntime, get_runtime
from facetoface.tavus_sim.state import (
    Conversation,
    CreateRecord,
    Timings,
    isoformat,
    new_conversation_id,
    utcnow,
)

router = APIRouter(prefix="/v2")

INVALID_CONVERSATION_BODY = {"error": "Invalid conversation_id"}
INVALID_TOKEN_BODY = {"message": "Invalid access token"}

NonEmptyStr = Annotated[str, StringConstraints(min_length=1)]


class CreateProperties(BaseModel):
    """``properties`` of a create request (tavus-api.md §2.1)."""

    model_config = ConfigDict(extra="forbid", strict=True)

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


class CreateBody(BaseModel):
    """Body of ``POST /v2/conversations`` (tavus-api.md §2.1), with the G3 aliases."""

    model_config = ConfigDict(extra="forbid", strict=True)

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
    memory_stores: list[str] | None = None
    document_ids: list[str] | None = None
    document_retrieval_strategy: Literal["speed", "quality", "balanced"] | None = None
    document_tags: list[str] | None = None
    test_mode: bool | None = None
    require_auth: bool | None = None
    max_participants: int | None = Field(default=None, ge=2)
    policy: Literal["eu"] | None = None
    properties: CreateProperties | None = None


class BadRequest(Exception):
    """A 400 with a Tavus-style ``{"message": ...}`` body."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def response(self) -> JSONResponse:
        """Render the error."""
        return JSONResponse({"message": self.message}, status_code=400)


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


# ---------------------------------------------------------------------- plumbing


async def _preamble(request: Request, runtime: SimRuntime) -> Response | None:
    """Apply latency and the API key check; return the response that ends the call, if any."""
    if runtime.config.latency_ms:
        await runtime.sleep(runtime.config.latency_ms / 1000)
    given = request.headers.get("x-api-key", "").encode()
    if not hmac.compare_digest(given, runtime.config.api_key.encode()):
        return JSONResponse(INVALID_TOKEN_BODY, status_code=401)
    return None


async def _fault_response(
    request: Request, runtime: SimRuntime, rule: FaultRule, done: Response | None
) -> Response:
    """Turn a fault rule into what the client gets; ``done`` is the real answer when the
    operation was applied first."""
    if rule.kind == "timeout":
        await runtime.sleep(rule.delay_s)
        return done or JSONResponse(GATEWAY_TIMEOUT_BODY, status_code=504)
    if rule.kind == "concurrency_limit":
        return JSONResponse(CONCURRENCY_LIMIT_BODY, status_code=400)
    if rule.kind == "out_of_credits":
        return JSONResponse(OUT_OF_CREDITS_BODY, status_code=402)
    if rule.kind == "drop_connection":
        await drop_connection(request.scope)
        # Discarded by uvicorn: the connection is already gone.
        return Response(status_code=500)
    body = DEFAULT_STATUS_BODY if rule.body is None else rule.body
    if isinstance(body, str):
        return PlainTextResponse(body, status_code=rule.status)
    return JSONResponse(body, status_code=rule.status)


async def _guarded(
    request: Request, endpoint: str, action: Callable[[SimRuntime], Awaitable[Response]]
) -> Response:
    runtime = get_runtime(request)
    denied = await _preamble(request, runtime)
    if denied is not None:
        return denied
    rule = runtime.faults.take(endpoint)
    if rule is not None and not rule.apply_first:
        return await _fault_response(request, runtime, rule, None)
    try:
        response = await action(runtime)
    except BadRequest as exc:
        response = exc.response()
    if rule is not None:
        return await _fault_response(request, runtime, rule, response)
    return response


def _bool_param(request: Request, name: str) -> bool:
    raw = request.query_params.get(name)
    if raw is None or raw.lower() in ("false", "0", ""):
        return False
    if raw.lower() in ("true", "1"):
        return True
    raise BadRequest(f"{name} must be true or false")


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a positive integer") from None
    if value < 1:
        raise BadRequest(f"{name} must be a positive integer")
    return value


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg']}")
    return "Invalid request body: " + "; ".join(parts)


def _one_of(primary: str | None, alias: str | None, names: str) -> str | None:
    if primary is not None and alias is not None and primary != alias:
        raise BadRequest(f"{names} name different ids")
    return primary if primary is not None else alias


def _meeting_token(conversation_id: str, api_key: str, ttl_s: int) -> str:
    """Return a JWT-shaped token; only the simulator's room page checks it (by equality)."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = {"r": conversation_id, "exp": int(time.time()) + ttl_s}
    payload = b64(json.dumps(claims).encode())
    signature = hmac.new(api_key.encode(), f"{header}.{payload}".encode(), hashlib.sha256)
    return f"{header}.{payload}.{b64(signature.digest())}"


# ---------------------------------------------------------------------- create


async def _create(request: Request, runtime: SimRuntime, raw: bytes) -> tuple[Response, str | None]:
    try:
        body = CreateBody.model_validate_json(raw or b"{}")
        persona_id = _one_of(body.persona_id, body.pal_id, "persona_id and pal_id")
        replica_id = _one_of(body.replica_id, body.face_id, "replica_id and face_id")
        if persona_id is None and replica_id is None:
            raise BadRequest(
                "Each request must have a valid replica_id value that's either directly "
                "passed in or as part of a persona"
            )
        callback_url = body.callback_url or ""
        if callback_url:
            parts = urlsplit(callback_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise BadRequest("callback_url must be an absolute http(s) URL")
    except ValidationError as exc:
        return BadRequest(_describe(exc)).response(), None
    except BadRequest as exc:
        return exc.response(), None

    config = runtime.config
    state = runtime.state
    test_mode = body.test_mode is True
    properties = body.properties.model_dump(exclude_none=True) if body.properties else {}
    max_call = properties.get("max_call_duration", config.default_max_call_duration)
    if config.max_call_duration_cap is not None:
        # Tavus is reported to lower values above the plan's cap silently (§2.1).
        max_call = min(max_call, config.max_call_duration_cap)
    timings = Timings(
        max_call_duration=max_call,
        participant_left_timeout=properties.get(
            "participant_left_timeout", config.default_participant_left_timeout
        ),
        participant_absent_timeout=properties.get(
            "participant_absent_timeout", config.default_participant_absent_timeout
        ),
    )
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
            replica_id=replica_id or config.default_replica_id,
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
        )
        state.conversations[conversation_id] = conversation
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
    denied = await _preamble(request, runtime)
    if denied is not None:
        return denied
    raw = await request.body()
    try:
        parsed: Any = json.loads(raw) if raw else None
    except ValueError:
        parsed = None
    record = CreateRecord(at=utcnow(), request=parsed)
    runtime.state.ledger.append(record)
    rule = runtime.faults.take("create")
    if rule is not None:
        record.fault = rule.kind
    if rule is not None and not rule.apply_first:
        response = await _fault_response(request, runtime, rule, None)
    else:
        response, record.conversation_id = await _create(request, runtime, raw)
        if rule is not None:
            response = await _fault_response(request, runtime, rule, response)
    dropped = rule is not None and rule.kind == "drop_connection"
    record.status_code = None if dropped else response.status_code
    return response


# ---------------------------------------------------------------------- read


@router.get("/conversations/{conversation_id}")
async def get_conversation(request: Request, conversation_id: str) -> Response:
    """Return one conversation; ``?verbose=true`` adds its events and transcript."""

    async def action(runtime: SimRuntime) -> Response:
        verbose = _bool_param(request, "verbose")
        conversation = runtime.state.visible(conversation_id)
        if conversation is None:
            return JSONResponse(INVALID_CONVERSATION_BODY, status_code=400)
        if verbose:
            return JSONResponse(verbose_conversation_json(conversation))
        return JSONResponse(conversation_json(conversation))

    return await _guarded(request, "get", action)


@router.get("/conversations")
async def list_conversations(request: Request) -> Response:
    """List conversations newest first: ``?limit=`` (10), ``?page=`` (1-based), ``?status=``."""

    async def action(runtime: SimRuntime) -> Response:
        limit = _int_param(request, "limit", 10)
        page = _int_param(request, "page", 1)
        status = request.query_params.get("status")
        if status is not None and status not in ("active", "ended"):
            raise BadRequest("status must be active or ended")
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

    return await _guarded(request, "list", action)


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

    return await _guarded(request, "end", action)


@router.delete("/conversations/{conversation_id}")
async def delete_conversation(request: Request, conversation_id: str) -> Response:
    """Delete a conversation (soft, or ``?hard=true``), ending it first if active."""

    async def action(runtime: SimRuntime) -> Response:
        hard = _bool_param(request, "hard")
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

    return await _guarded(request, "delete", action)
