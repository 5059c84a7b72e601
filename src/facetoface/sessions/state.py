"""What we know about a conversation, and everything derived from it — pure functions.

Tavus documents neither ordering nor retries for its callbacks, so every effect here is a
merge that commutes: the earliest replica-joined and shutdown times win, the transcript and
recording are kept whole, post-call actions form a sorted set. Any permutation of a
conversation's events, each applied any number of times, gives the same `ConversationState`,
and so the same derived session (status, end time, duration, readable transcript).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from facetoface.models import ConversationStatus

_LIVE = {
    ConversationStatus.starting.value,
    ConversationStatus.active.value,
    ConversationStatus.ending.value,
    ConversationStatus.indeterminate.value,
}

#: Shutdown reasons after which the session counts as completed (the call ran normally);
#: anything else (start-up exceptions, internal errors, the user never joining) interrupts it.
_NORMAL_SHUTDOWNS = (
    "end_conversation_endpoint_hit",
    "max_call_duration",
    "participant_left_timeout",
    "conversation_ended",
)


@dataclass(frozen=True, slots=True)
class ConversationState:
    """The facts of one conversation as stored on its `mentor_conversations` row."""

    status: str
    tavus_conversation_id: str | None = None
    replica_id: str | None = None
    mentor_name: str | None = None
    start_time: datetime | None = None
    replica_joined_at: datetime | None = None
    shutdown_at: datetime | None = None
    shutdown_reason: str | None = None
    closed_at: datetime | None = None
    transcript: list[dict[str, Any]] | None = None
    recording: dict[str, Any] | None = None
    perception_analysis: str | None = None
    post_call_actions: list[dict[str, Any]] | None = None

    @property
    def is_live(self) -> bool:
        return self.status in _LIVE

    @property
    def has_ended(self) -> bool:
        return self.shutdown_at is not None or self.closed_at is not None


@dataclass(frozen=True, slots=True)
class SessionView:
    """What is derived from a `ConversationState` and stored for reading."""

    conversation_status: str
    session_status: str
    started_at: datetime | None
    end_time: datetime | None
    duration_seconds: int | None
    conversation_transcript: str | None
    session_metadata: dict[str, Any]


# --- normalisation -----------------------------------------------------------------------
def normalize_shutdown_reason(reason: Any) -> str | None:
    """Tavus's reasons, with or without their documented " reached" suffix, as one form."""
    if not isinstance(reason, str) or not reason.strip():
        return None
    value = " ".join(reason.split()).lower()
    value = re.sub(r"\s+reached$", "", value)
    return value[:200]


def is_normal_shutdown(reason: str | None) -> bool:
    return reason is not None and reason.startswith(_NORMAL_SHUTDOWNS)


_SPEECH_MARKER = re.compile(r"USER_SPEECH:\s*(.*?)\s*(?:VISUAL_SCENE:.*)?$", re.DOTALL)


def readable_transcript(entries: list[dict[str, Any]] | None, mentor: str | None) -> str | None:
    """`Speaker: words` blocks without the leading system prompt (and without the
    `USER_SPEECH:` / `VISUAL_SCENE:` markers of older payloads)."""
    if not entries:
        return None
    blocks: list[str] = []
    for entry in entries:
        role = str(entry.get("role", "")).strip().lower()
        content = entry.get("content")
        if role == "system" or not isinstance(content, str) or not content.strip():
            continue
        match = _SPEECH_MARKER.search(content)
        text = (match.group(1) if match else content).strip()
        if not text:
            continue
        speaker = {"user": "User", "assistant": mentor or "Mentor"}.get(role, role.title() or "?")
        blocks.append(f"{speaker}: {text}")
    return "\n\n".join(blocks) or None


def _earliest(current: datetime | None, new: datetime | None) -> datetime | None:
    if current is None:
        return new
    if new is None:
        return current
    return min(current, new)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def body_hash(value: Any) -> str:
    """A stable digest of a JSON value (key order does not matter)."""
    return hashlib.sha256(_canonical(value).encode()).hexdigest()


# --- transitions -------------------------------------------------------------------------
def replica_joined(state: ConversationState, at: datetime | None) -> ConversationState:
    """The replica is in the room: the conversation exists and runs (adopts unknown starts)."""
    status = state.status
    if status in {ConversationStatus.starting.value, ConversationStatus.indeterminate.value}:
        status = ConversationStatus.active.value
    return replace(state, status=status, replica_joined_at=_earliest(state.replica_joined_at, at))


def shut_down(state: ConversationState, at: datetime, reason: str | None) -> ConversationState:
    """Tavus closed the room. The earliest shutdown wins; ties break on the reason."""
    if (
        state.shutdown_at is None
        or at < state.shutdown_at
        or (at == state.shutdown_at and (reason or "") < (state.shutdown_reason or ""))
    ):
        state = replace(state, shutdown_at=at, shutdown_reason=reason)
    if state.status != ConversationStatus.failed.value:
        state = replace(state, status=ConversationStatus.ended.value)
    return state


def close_by_user(state: ConversationState, at: datetime) -> ConversationState:
    """Our end call closed the session."""
    if state.status == ConversationStatus.failed.value:
        return state
    return replace(
        state,
        status=ConversationStatus.ended.value,
        closed_at=state.closed_at or at,
    )


def with_transcript(state: ConversationState, entries: list[dict[str, Any]]) -> ConversationState:
    # Duplicates carry the same transcript; if two ever differ, the longer wins, then the
    # canonically smaller: a choice by a total order, so arrival order does not matter.
    def rank(value: list[dict[str, Any]]) -> tuple[int, str]:
        return (-len(value), _canonical(value))

    if state.transcript is not None and rank(state.transcript) <= rank(entries):
        return state
    return replace(state, transcript=entries)


def with_recording(state: ConversationState, recording: dict[str, Any]) -> ConversationState:
    # A ready recording beats a failed copy; among equals the canonically smaller wins.
    def rank(value: dict[str, Any]) -> tuple[int, str]:
        return (0 if value.get("status") == "ready" else 1, _canonical(value))

    if state.recording is not None and rank(state.recording) <= rank(recording):
        return state
    return replace(state, recording=recording)


def with_perception(state: ConversationState, analysis: str) -> ConversationState:
    if state.perception_analysis is not None and state.perception_analysis <= analysis:
        return state
    return replace(state, perception_analysis=analysis)


def with_post_call_action(state: ConversationState, action: dict[str, Any]) -> ConversationState:
    actions = {body_hash(a): a for a in state.post_call_actions or []}
    actions[body_hash(action)] = action
    ordered = [actions[key] for key in sorted(actions)]
    return replace(state, post_call_actions=ordered)


# --- derivation --------------------------------------------------------------------------
def derive(state: ConversationState) -> SessionView:
    """The session as stored for reading, from the conversation's facts alone."""
    started_at = state.start_time or state.replica_joined_at
    end_time = state.shutdown_at or state.closed_at
    duration = None
    if started_at is not None and end_time is not None:
        duration = max(0, int((end_time - started_at).total_seconds()))
    if state.status == ConversationStatus.failed.value:
        session_status = "failed"
    elif state.has_ended:
        ran = started_at is not None and (
            state.shutdown_reason is None or is_normal_shutdown(state.shutdown_reason)
        )
        session_status = "completed" if ran else "interrupted"
    elif state.replica_joined_at is not None:
        session_status = "in_progress"
    else:
        session_status = "started"
    metadata: dict[str, Any] = {"tavus_conversation_id": state.tavus_conversation_id}
    if state.replica_id:
        metadata["replica_id"] = state.replica_id
    if state.shutdown_reason:
        metadata["shutdown_reason"] = state.shutdown_reason
    if state.perception_analysis:
        metadata["perception_analysis"] = state.perception_analysis
    if state.recording:
        metadata["recording"] = state.recording
    return SessionView(
        conversation_status=state.status,
        session_status=session_status,
        started_at=started_at,
        end_time=end_time,
        duration_seconds=duration,
        conversation_transcript=readable_transcript(state.transcript, state.mentor_name),
        session_metadata=metadata,
    )
