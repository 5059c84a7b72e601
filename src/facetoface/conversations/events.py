"""Tavus's event envelope, and what each event type contributes to a conversation (a `Delta`).

Both generations of payloads are read: G1 transcripts of `{role, content}` and G2 entries with
timing; `system.pal_joined` beside `system.replica_joined`; and the names the origin app
invented (`conversation_started`, `transcript_ready`, `conversation_ended`) as aliases. The
same envelope arrives as a callback and as an entry of the verbose conversation fetch.

Data PostgreSQL cannot store is normalised here (`storable`), never refused: an event whose
transcript holds U+0000 is kept with that character replaced. A timestamp outside the range
we can store is treated as absent (the time of receipt stands in), not as a malformed event;
so is one that cannot be true of an event we just received (`believable_time`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from facetoface.conversations.state import Delta, canonical_digest, normalize_shutdown_reason
from facetoface.conversations.storable import TooDeep, storable_json

JOINED = frozenset({"system.replica_joined", "system.pal_joined", "conversation_started"})
SHUTDOWN = frozenset({"system.shutdown", "conversation_ended"})
TRANSCRIPT = frozenset({"application.transcription_ready", "transcript_ready"})
RECORDING_READY = frozenset({"application.recording_ready"})
RECORDING_FAILED = frozenset({"application.recording_copy_failed"})
PERCEPTION = frozenset({"application.perception_analysis"})
POST_CALL_ACTION = frozenset({"application.post_call_action_executed"})
#: Events that happen once per conversation: a second copy is a duplicate whatever it holds.
ONE_SHOT = JOINED | SHUTDOWN | TRANSCRIPT | RECORDING_READY | RECORDING_FAILED | PERCEPTION
KNOWN = ONE_SHOT | POST_CALL_ACTION
#: The event types whose payload carries a transcript (retention redacts their inbox rows).
CARRIES_TRANSCRIPT = TRANSCRIPT | {"conversation_ended"}


class MalformedCallback(ValueError):
    """The body is not a Tavus conversation event."""


def _epoch_or_value(value: Any) -> Any:
    """Epoch seconds become a UTC time (None when out of range); other values pydantic parses
    (a string that is no time at all is a malformed event)."""
    if value in ("", None):
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return None  # ±inf, far out of range: the time of receipt stands in
    return value


class CallbackEnvelope(BaseModel):
    """The part of an event we rely on; the whole body is stored as received."""

    model_config = ConfigDict(extra="allow")

    conversation_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")
    event_type: str = Field(min_length=1, max_length=100)
    message_type: str | None = None
    timestamp: datetime | None = None
    properties: dict[str, Any] = Field(default_factory=dict)

    @field_validator("timestamp", mode="before")
    @classmethod
    def _lenient_timestamp(cls, value: Any) -> Any:
        return _epoch_or_value(value)

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        try:  # stored as UTC: 0001-01-01T00:00+14:00 has no UTC value
            return value.astimezone(UTC)
        except OverflowError:
            return None

    @field_validator("properties", mode="before")
    @classmethod
    def _properties(cls, value: Any) -> Any:
        return {} if value is None else value


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")  # Python's json reads NaN and ±Infinity


@dataclass(frozen=True, slots=True)
class ParsedEvent:
    """An event ready to store: the envelope, the storable JSON, whether it was changed."""

    envelope: CallbackEnvelope
    payload: dict[str, Any]
    normalized: bool


def parse_event(raw: Any) -> ParsedEvent:
    """Validate an already-decoded event object; MalformedCallback when it is not one."""
    if not isinstance(raw, dict):
        raise MalformedCallback("the body is not a JSON object")
    try:
        payload, changed = storable_json(raw)
    except TooDeep as exc:
        raise MalformedCallback(f"the body {exc}") from None
    try:
        envelope = CallbackEnvelope.model_validate(payload)
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors()})
        raise MalformedCallback(f"invalid or missing: {', '.join(fields)}") from None
    return ParsedEvent(envelope, payload, changed)


def parse_body(body: bytes) -> ParsedEvent:
    """The event in a callback body; MalformedCallback when it is not one."""
    try:
        raw = json.loads(body, parse_constant=_not_json)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise MalformedCallback("the body is not JSON") from exc
    return parse_event(raw)


def dedupe_key(mentor_conversation_id: Any, event: ParsedEvent) -> str:
    """One row per one-shot event of a conversation; other events are told apart by body."""
    base = f"{mentor_conversation_id}:{event.envelope.event_type}"
    if event.envelope.event_type in ONE_SHOT:
        return base
    return f"{base}:{canonical_digest(event.payload)}"


#: Tavus's clock may run ahead of ours by this much; an event stamped later than that after
#: its receipt is stamped wrongly.
CLOCK_SKEW = timedelta(minutes=5)
#: The oldest an event's time may be when it reaches us (a callback comes within seconds; the
#: reconciler's fetch of a conversation Tavus still holds, within weeks).
OLDEST_EVENT = timedelta(days=366)


def believable_time(stamped: datetime | None, received_at: datetime) -> datetime:
    """When an event happened: its own timestamp, unless it has none or that cannot be true —
    after its receipt beyond `CLOCK_SKEW`, or older than `OLDEST_EVENT` — and then the time it
    was received. (Believed, a shutdown stamped in the year 9999 made a session last millennia:
    a duration no column holds, and a 500.)"""
    if stamped is None or not (received_at - OLDEST_EVENT <= stamped <= received_at + CLOCK_SKEW):
        return received_at
    return stamped


def event_delta(event: CallbackEnvelope, received_at: datetime) -> Delta:
    """What `event` contributes to its conversation (nothing for an unknown type).

    The Tavus id it names is always bound (an event can beat the create's answer to it).
    """
    kind, props = event.event_type, event.properties
    at = believable_time(event.timestamp, received_at)
    bind = event.conversation_id
    if kind in JOINED:
        return Delta(conversation_id=bind, joined_at=at)
    if kind in SHUTDOWN:
        reason = normalize_shutdown_reason(props.get("shutdown_reason")) or (
            "conversation_ended" if kind == "conversation_ended" else None
        )
        # The origin's conversation_ended carried the transcript too.
        transcript = _transcript(props.get("transcript"))
        return Delta(
            conversation_id=bind, shutdown_at=at, shutdown_reason=reason, transcript=transcript
        )
    if kind in TRANSCRIPT:
        return Delta(conversation_id=bind, transcript=_transcript(props.get("transcript")))
    if kind in RECORDING_READY:
        return Delta(conversation_id=bind, recording=_recording("ready", props))
    if kind in RECORDING_FAILED:
        return Delta(conversation_id=bind, recording=_recording("copy_failed", props))
    if kind in PERCEPTION:
        analysis = props.get("analysis")
        if analysis is None:
            return Delta(conversation_id=bind)
        text = analysis if isinstance(analysis, str) else json.dumps(analysis, sort_keys=True)
        return Delta(conversation_id=bind, perception_analysis=text)
    if kind in POST_CALL_ACTION:
        return Delta(conversation_id=bind, post_call_action=props)
    return Delta(conversation_id=bind)


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
