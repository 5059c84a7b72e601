"""In-memory store of the simulator: conversations and the ledger of create requests.

Everything lives in one event loop, so plain synchronous mutations are already atomic; the
lock serialises the multi-step operations (create, end, delete, shutdown) so that a future
``await`` inside one of them cannot let another request observe a half-done change.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

ConversationStatus = Literal["active", "ended", "deleted"]


def utcnow() -> datetime:
    """Return the current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def isoformat(moment: datetime) -> str:
    """Format a time as Tavus does: ISO-8601 UTC with microseconds and a ``Z`` suffix."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_conversation_id() -> str:
    """Return a fresh conversation id: ``c`` followed by 12 hex characters."""
    return "c" + secrets.token_hex(6)


@dataclass(slots=True)
class TranscriptEntry:
    """One turn of the conversation, in Tavus's G2 transcript shape."""

    role: Literal["system", "user", "assistant"]
    content: str
    timestamp: float | None = None
    """Unix epoch seconds of the start of the turn (absent on the system entry)."""
    seconds_from_start: float | None = None
    duration: float | None = None
    inference_id: str | None = None
    """Only on assistant turns."""

    def to_json(self) -> dict[str, Any]:
        """Return the entry as Tavus sends it, without keys that do not apply."""
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.timestamp is not None:
            out["timestamp"] = self.timestamp
            out["seconds_from_start"] = self.seconds_from_start
            out["duration"] = self.duration
        if self.inference_id is not None:
            out["inference_id"] = self.inference_id
        return out


@dataclass(slots=True)
class Participant:
    """A person present in the room."""

    participant_id: str
    name: str
    joined_at: datetime

    def to_json(self) -> dict[str, Any]:
        """Return the participant as JSON-ready data."""
        return {
            "participant_id": self.participant_id,
            "name": self.name,
            "joined_at": isoformat(self.joined_at),
        }


@dataclass(slots=True)
class Delivery:
    """Outcome of sending one callback (one copy, when duplicated)."""

    event_type: str
    outcome: Literal["delivered", "rejected", "failed", "dropped"]
    status_code: int | None = None
    attempts: int = 0
    at: datetime = field(default_factory=utcnow)

    def to_json(self) -> dict[str, Any]:
        """Return the delivery as JSON-ready data."""
        return {
            "event_type": self.event_type,
            "outcome": self.outcome,
            "status_code": self.status_code,
            "attempts": self.attempts,
            "at": isoformat(self.at),
        }


@dataclass(slots=True)
class Timings:
    """Effective timers of a conversation, in simulated seconds."""

    max_call_duration: int
    participant_left_timeout: int
    participant_absent_timeout: int


@dataclass(slots=True)
class Conversation:
    """A simulated Tavus conversation and everything that happened in it."""

    conversation_id: str
    conversation_name: str
    conversation_url: str
    callback_url: str
    persona_id: str | None
    replica_id: str
    conversational_context: str
    custom_greeting: str | None
    properties: dict[str, Any]
    timings: Timings
    test_mode: bool
    max_participants: int | None
    meeting_token: str | None
    created_at: datetime
    updated_at: datetime
    status: ConversationStatus = "active"
    shutdown_reason: str | None = None
    ended_at: datetime | None = None
    replica_joined_at: datetime | None = None
    participants: dict[str, Participant] = field(default_factory=dict)
    ever_joined: bool = False
    greeted: bool = False
    context_mentioned: bool = False
    """Whether the mentor has already told the participant it has their context."""
    transcript: list[TranscriptEntry] = field(default_factory=list)
    """User and assistant turns said in the room (the system entry is added at shutdown)."""
    final_transcript: list[TranscriptEntry] | None = None
    """The transcript as sent in ``application.transcription_ready``, once known."""
    events: list[dict[str, Any]] = field(default_factory=list)
    """Every callback envelope generated, delivered or not, in generation order."""
    deliveries: list[Delivery] = field(default_factory=list)
    perception_model: str | None = None
    """The persona's perception model at create; only a Raven model yields an analysis."""
    participant_tags: list[str] = field(default_factory=list)
    """``participant_tags`` of the create (Memory Stores; one tag today)."""
    memory_tags: list[str] = field(default_factory=list)
    """Legacy ``memory_stores`` tags of the create."""
    memory_store_id: str | None = None
    """The Memory Store this conversation reads and feeds, if any (memory.py)."""
    memory_recalled: bool = False
    """Whether the mentor has already brought up what it remembers."""
    extra_fields: dict[str, Any] = field(default_factory=dict)
    """Create fields the simulator accepts without modelling them (Tavus ignores them too)."""
    account: str = ""
    """The API key that created it (Memory Stores belong to an account)."""
    pinned_turns: set[int] = field(default_factory=set)
    """Transcript indexes of user turns a ``remember`` tool call took care of: the app pinned
    them, so learned memory leaves them out (forgetting the pin forgets them)."""

    def user_turns(self) -> list[str]:
        """What the participant said, in order."""
        return [entry.content for entry in self.transcript if entry.role == "user"]

    @property
    def visible(self) -> bool:
        """Whether the Tavus API can see this conversation (soft-deleted ones are hidden)."""
        return self.status != "deleted"

    def touch(self) -> None:
        """Mark the conversation as modified now."""
        self.updated_at = utcnow()


@dataclass(slots=True)
class CreateRecord:
    """One ``POST /v2/conversations`` that passed authentication, whatever its outcome."""

    at: datetime
    request: Any
    """The parsed JSON body (``None`` if it was not valid JSON)."""
    conversation_id: str | None = None
    """Set when a conversation was created (even if a fault then hid the answer)."""
    status_code: int | None = None
    """What the client was answered; ``None`` when the connection was dropped."""
    fault: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the record as JSON-ready data."""
        return {
            "at": isoformat(self.at),
            "conversation_id": self.conversation_id,
            "status_code": self.status_code,
            "fault": self.fault,
            "request": self.request,
        }


class SimState:
    """All conversations and the create ledger of one simulator."""

    def __init__(self) -> None:
        self.conversations: dict[str, Conversation] = {}
        self.ledger: list[CreateRecord] = []
        self.lock = asyncio.Lock()

    def visible(self, conversation_id: str) -> Conversation | None:
        """Return the conversation if the Tavus API may show it, else ``None``."""
        conversation = self.conversations.get(conversation_id)
        if conversation is None or not conversation.visible:
            return None
        return conversation

    def active_count(self) -> int:
        """Count conversations holding a concurrency slot."""
        return sum(1 for c in self.conversations.values() if c.status == "active")

    def created_total(self) -> int:
        """Count conversations ever created (including test-mode and deleted ones)."""
        return sum(1 for record in self.ledger if record.conversation_id is not None)

    def clear(self) -> None:
        """Forget every conversation and create record."""
        self.conversations.clear()
        self.ledger.clear()
