"""Tavus's callback envelope, and what each event type means for a conversation.

Both generations of payloads are read (tavus-api.md §4.3): G1 transcripts of `{role, content}`
and G2 entries with timing; `system.pal_joined` beside `system.replica_joined`; and the names
the origin app invented (`conversation_started`, `transcript_ready`, `conversation_ended`) as
aliases.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from facetoface.sessions.state import (
    ConversationState,
    body_hash,
    normalize_shutdown_reason,
    replica_joined,
    shut_down,
    with_perception,
    with_post_call_action,
    with_recording,
    with_transcript,
)

JOINED = {"system.replica_joined", "system.pal_joined", "conversation_started"}
SHUTDOWN = {"system.shutdown", "conversation_ended"}
TRANSCRIPT = {"application.transcription_ready", "transcript_ready"}
RECORDING_READY = {"application.recording_ready"}
RECORDING_FAILED = {"application.recording_copy_failed"}
PERCEPTION = {"application.perception_analysis"}
POST_CALL_ACTION = {"application.post_call_action_executed"}
#: Events that happen once per conversation: a second copy is a duplicate whatever it holds.
ONE_SHOT = JOINED | SHUTDOWN | TRANSCRIPT | RECORDING_READY | RECORDING_FAILED | PERCEPTION
KNOWN = ONE_SHOT | POST_CALL_ACTION


class MalformedCallback(ValueError):
    """The body is not a Tavus conversation callback."""


class CallbackEnvelope(BaseModel):
    """The part of a callback we rely on; the whole body is stored as received."""

    model_config = ConfigDict(extra="allow")

    conversation_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")
    event_type: str = Field(min_length=1, max_length=100)
    message_type: str | None = None
    timestamp: datetime | None = None
    properties: dict[str, Any] = Field(default_factory=dict)

    @field_validator("timestamp", mode="before")
    @classmethod
    def _lenient_timestamp(cls, value: Any) -> Any:
        if isinstance(value, int | float):
            try:
                return datetime.fromtimestamp(value, UTC)
            except (OverflowError, OSError) as exc:  # ±inf, far out of range: a 400, not a 500
                raise ValueError("timestamp out of range") from exc
        if value in ("", None):
            return None
        return value

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        try:  # stored as UTC: 0001-01-01T00:00+14:00 has no UTC value (a 400, not a 500)
            return value.astimezone(UTC)
        except OverflowError as exc:
            raise ValueError("timestamp out of range") from exc

    @field_validator("properties", mode="before")
    @classmethod
    def _properties(cls, value: Any) -> Any:
        return {} if value is None else value


#: Tavus's payloads nest a few levels; deeper bodies are refused before anything recurses.
MAX_DEPTH = 32


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")  # Python's json reads NaN and ±Infinity


def _check_storable(raw: Any) -> None:
    """Refuse what PostgreSQL's jsonb cannot store (U+0000) and pathological nesting."""
    stack: list[tuple[Any, int]] = [(raw, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise MalformedCallback(f"the body nests deeper than {MAX_DEPTH} levels")
        if isinstance(value, str) and "\x00" in value:
            raise MalformedCallback("the body contains U+0000")
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for pair in value.items() for item in pair)
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)


def parse_envelope(body: bytes) -> tuple[CallbackEnvelope, dict[str, Any]]:
    """The validated envelope and the raw JSON object; MalformedCallback otherwise."""
    try:
        raw = json.loads(body, parse_constant=_not_json)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise MalformedCallback("the body is not JSON") from exc
    if not isinstance(raw, dict):
        raise MalformedCallback("the body is not a JSON object")
    _check_storable(raw)
    try:
        return CallbackEnvelope.model_validate(raw), raw
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors()})
        raise MalformedCallback(f"invalid or missing: {', '.join(fields)}") from None


def dedupe_key(mentor_conversation_id: Any, event: CallbackEnvelope, raw: dict[str, Any]) -> str:
    """One row per one-shot event of a conversation; other events are told apart by body."""
    base = f"{mentor_conversation_id}:{event.event_type}"
    return base if event.event_type in ONE_SHOT else f"{base}:{body_hash(raw)}"


@dataclass(frozen=True, slots=True)
class Effect:
    state: ConversationState
    known: bool


def apply_event(state: ConversationState, event: CallbackEnvelope, received_at: datetime) -> Effect:
    """The conversation's facts after `event`. Unknown event types change nothing."""
    kind, props = event.event_type, event.properties
    at = event.timestamp or received_at
    if kind in JOINED:
        return Effect(replica_joined(state, at), True)
    if kind in SHUTDOWN:
        reason = normalize_shutdown_reason(props.get("shutdown_reason")) or (
            "conversation_ended" if kind == "conversation_ended" else None
        )
        new = shut_down(state, at, reason)
        transcript = _transcript(props.get("transcript"))
        if transcript is not None:  # the origin's conversation_ended carried it
            new = with_transcript(new, transcript)
        return Effect(new, True)
    if kind in TRANSCRIPT:
        transcript = _transcript(props.get("transcript"))
        return Effect(with_transcript(state, transcript) if transcript else state, True)
    if kind in RECORDING_READY:
        return Effect(with_recording(state, _recording("ready", props)), True)
    if kind in RECORDING_FAILED:
        return Effect(with_recording(state, _recording("copy_failed", props)), True)
    if kind in PERCEPTION:
        analysis = props.get("analysis")
        if analysis is None:
            return Effect(state, True)
        text = analysis if isinstance(analysis, str) else json.dumps(analysis, sort_keys=True)
        return Effect(with_perception(state, text), True)
    if kind in POST_CALL_ACTION:
        return Effect(with_post_call_action(state, props), True)
    return Effect(state, False)


_RECORDING_FIELDS = (
    "bucket_name",
    "s3_key",
    "duration",
    "storage_provider",
    "storage_uri",
    "recording_id",
    "error_code",
    "error_message",
)


def _recording(status: str, props: dict[str, Any]) -> dict[str, Any]:
    recording = {"status": status}
    recording.update({k: props[k] for k in _RECORDING_FIELDS if props.get(k) is not None})
    return recording


def _transcript(value: Any) -> list[dict[str, Any]] | None:
    """G1/G2 entry lists as given; a bare string (origin payloads) as one entry."""
    if isinstance(value, list):
        entries = [e for e in value if isinstance(e, dict)]
        return entries or None
    if isinstance(value, str) and value.strip():
        return [{"role": "transcript", "content": value}]
    return None
