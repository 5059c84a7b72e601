"""The simulated Daily room behind ``conversation_url``: a page for people, JSON for tests.

- ``GET /rooms/{id}``: the page (static/room.html).
- ``GET /rooms/{id}/state``: who meets whom (mentor and user names from the context), status,
  greeting, participants, the turns said so far, and the running timers as seconds left
  (``closes_in_seconds`` after the last participant left, ``absent_closes_in_seconds`` while
  nobody has joined yet, ``max_duration_ends_in_seconds``).
- ``POST /rooms/{id}/join`` ``{"name"?, "token"?}`` (or ``?t=<meeting_token>``): a participant
  joins; 409 when the conversation has ended or the room is full, 403 without the meeting
  token of a ``require_auth`` conversation.
- ``POST /rooms/{id}/say`` ``{"text", "participant_id"?}`` → ``{"reply"}``, once the tools
  the words call for have answered (actions.py).
- ``POST /rooms/{id}/leave`` ``{"participant_id"?}``: without an id, the latest participant
  leaves. Leaving an ended room is a no-op.

Errors are ``{"message": ...}``; an unknown or deleted conversation is a 404 here, because
this is the room, not the Tavus API.
"""

from __future__ import annotations

import hmac
import json
from functools import cache
from importlib import resources
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationError

from tavus_sim import mentor
from tavus_sim.responses import JSONResponse
from tavus_sim.runtime import SimRuntime, get_runtime
from tavus_sim.state import Conversation, isoformat, utcnow

router = APIRouter(prefix="/rooms")

ModelT = TypeVar("ModelT", bound=BaseModel)

_MAX_UTTERANCE_CHARS = 2000
# The page is same-origin only and embeds nothing; framing stays allowed because apps embed
# conversation_url in an iframe.
_PAGE_CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'"
)


class JoinBody(BaseModel):
    """Body of ``POST /rooms/{id}/join``."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=100)
    token: str | None = None


def _utterance(value: Any) -> str:
    """Any text a user can type — a lone surrogate or U+0000 too, which pydantic's own `str`
    refuses: Tavus takes what the user said as it comes."""
    if not isinstance(value, str) or not 1 <= len(value) <= _MAX_UTTERANCE_CHARS:
        raise ValueError(f"text must be 1-{_MAX_UTTERANCE_CHARS} characters")
    return value


class SayBody(BaseModel):
    """Body of ``POST /rooms/{id}/say``."""

    model_config = ConfigDict(extra="forbid")
    text: Annotated[str, PlainValidator(_utterance)]
    participant_id: str | None = None


class LeaveBody(BaseModel):
    """Body of ``POST /rooms/{id}/leave``."""

    model_config = ConfigDict(extra="forbid")
    participant_id: str | None = None


class RoomError(Exception):
    """An error answer of the room API."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message

    def response(self) -> JSONResponse:
        """Render the error."""
        return JSONResponse({"message": self.message}, status_code=self.status_code)


@cache
def _page() -> str:
    return (resources.files("tavus_sim") / "static" / "room.html").read_text("utf-8")


def _conversation(runtime: SimRuntime, conversation_id: str) -> Conversation:
    conversation = runtime.state.visible(conversation_id)
    if conversation is None:
        raise RoomError(404, f"No room {conversation_id!r} exists.")
    return conversation


def _require_active(conversation: Conversation) -> None:
    if conversation.status == "active":
        return
    why = (
        "it was created in test mode"
        if conversation.test_mode
        else f"shutdown_reason: {conversation.shutdown_reason}"
    )
    raise RoomError(409, f"This conversation has ended ({why}); the room can no longer be used.")


async def _body(request: Request, model: type[ModelT]) -> ModelT:
    raw = await request.body()
    try:
        # `json.loads`, not pydantic's parser: what a user types may hold a lone surrogate
        # (`"\ud800"`), which a browser's JSON.stringify sends and pydantic's parser refuses.
        data = json.loads(raw or b"{}")
    except ValueError:
        raise RoomError(400, "Invalid body: not JSON") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RoomError(400, f"Invalid body: {exc.errors(include_url=False)}") from None


def _seconds_left(runtime: SimRuntime, conversation: Conversation, timer: str) -> float | None:
    deadline = runtime.lifecycle.deadline(conversation.conversation_id, timer)
    if deadline is None:
        return None
    return max(0.0, round((deadline - utcnow()).total_seconds(), 1))


def _room_state(runtime: SimRuntime, conversation: Conversation) -> dict[str, Any]:
    mentor_name, user_name = mentor.names(conversation.conversational_context)
    return {
        "conversation_id": conversation.conversation_id,
        "conversation_name": conversation.conversation_name,
        "mentor_name": mentor_name,
        "user_name": user_name,
        "status": conversation.status,
        "shutdown_reason": conversation.shutdown_reason,
        "ended_at": isoformat(conversation.ended_at) if conversation.ended_at else None,
        "ever_joined": conversation.ever_joined,
        "closes_in_seconds": _seconds_left(runtime, conversation, "left"),
        "absent_closes_in_seconds": _seconds_left(runtime, conversation, "absent"),
        "max_duration_ends_in_seconds": _seconds_left(runtime, conversation, "max_duration"),
        "require_auth": conversation.meeting_token is not None,
        "greeting": runtime.lifecycle.greeting_text(conversation),
        "participants": [
            participant.to_json() for participant in conversation.participants.values()
        ],
        "transcript": [entry.to_json() for entry in conversation.transcript],
    }


@router.get("/{conversation_id}", response_class=HTMLResponse)
async def room_page(request: Request, conversation_id: str) -> Response:
    """Serve the room page; the page itself fetches the room's state."""
    if get_runtime(request).state.visible(conversation_id) is None:
        return HTMLResponse("<!doctype html><title>No such room</title><p>No such room.</p>", 404)
    return HTMLResponse(_page(), headers={"Content-Security-Policy": _PAGE_CSP})


@router.get("/{conversation_id}/state")
async def room_state(request: Request, conversation_id: str) -> Response:
    """Return the room's state for the page and for tests."""
    runtime = get_runtime(request)
    try:
        conversation = _conversation(runtime, conversation_id)
    except RoomError as exc:
        return exc.response()
    return JSONResponse(_room_state(runtime, conversation))


@router.post("/{conversation_id}/join")
async def join_room(request: Request, conversation_id: str) -> Response:
    """Let a participant join the room; the mentor greets the first one."""
    runtime = get_runtime(request)
    try:
        body = await _body(request, JoinBody)
        conversation = _conversation(runtime, conversation_id)
        _require_active(conversation)
        if conversation.meeting_token is not None:
            token = body.token or request.query_params.get("t") or ""
            if not hmac.compare_digest(token.encode(), conversation.meeting_token.encode()):
                raise RoomError(403, "You are not allowed to join this meeting.")
        limit = conversation.max_participants
        # The replica counts as one participant (Tavus counts it against max_participants).
        if limit is not None and len(conversation.participants) + 1 >= limit:
            raise RoomError(409, f"The room is full (max_participants={limit}).")
    except RoomError as exc:
        return exc.response()
    participant = runtime.lifecycle.join(conversation, body.name)
    return JSONResponse(
        {
            "participant_id": participant.participant_id,
            "name": participant.name,
            "greeting": runtime.lifecycle.greeting_text(conversation),
            "conversation_id": conversation.conversation_id,
            "status": conversation.status,
        }
    )


@router.post("/{conversation_id}/say")
async def say_in_room(request: Request, conversation_id: str) -> Response:
    """Record what a participant says and return the mentor's reply."""
    runtime = get_runtime(request)
    try:
        body = await _body(request, SayBody)
        conversation = _conversation(runtime, conversation_id)
        _require_active(conversation)
        if not conversation.participants:
            raise RoomError(409, "Nobody is in the room; join before speaking.")
        if body.participant_id is not None and body.participant_id not in conversation.participants:
            raise RoomError(409, f"Participant {body.participant_id!r} is not in the room.")
    except RoomError as exc:
        return exc.response()
    return JSONResponse({"reply": await runtime.lifecycle.say(conversation, body.text)})


@router.post("/{conversation_id}/leave")
async def leave_room(request: Request, conversation_id: str) -> Response:
    """Let a participant (by default the latest one) leave the room."""
    runtime = get_runtime(request)
    try:
        body = await _body(request, LeaveBody)
        conversation = _conversation(runtime, conversation_id)
        participant_id = body.participant_id
        if participant_id is None and conversation.participants:
            participant_id = list(conversation.participants)[-1]
        if participant_id is not None and conversation.status == "active":
            if participant_id not in conversation.participants:
                raise RoomError(409, f"Participant {participant_id!r} is not in the room.")
            await runtime.lifecycle.leave(conversation, participant_id)
    except RoomError as exc:
        return exc.response()
    return JSONResponse(
        {
            "conversation_id": conversation.conversation_id,
            "status": conversation.status,
            "participants": len(conversation.participants),
        }
    )
