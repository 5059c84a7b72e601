"""What we know about a conversation, and everything derived from it — pure functions.

Tavus documents neither ordering nor retries for its callbacks, so every fact merge here
commutes: the earliest replica-joined and shutdown times win, the transcript and recording are
kept whole (a total order picks one when copies differ), post-call actions form a set keyed by
their digest. Any permutation of a conversation's events, each applied any number of times,
gives the same `ConversationState`, and so the same derived session (status, end time,
duration, readable transcript).

Everything that changes a conversation is a `Delta` — a callback's contribution, our end call,
Tavus's answer to a create, the reconciler's verdict — and `merge(state, delta)` is the model
of its effect. The database applies the same rules in `facetoface.apply_delta`
(`conversations/sql/apply_delta.sql`); this module is the oracle it is checked against: a
property test (`tests/conversations/test_merge_sql.py`) holds the two to the same results.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from facetoface.conversations.status import (
    UNRESOLVED_STATUSES,
    ConversationStatus,
    SessionStatus,
)

#: Shutdown reasons after which the session counts as completed (the call ran normally);
#: anything else (start-up exceptions, internal errors, the user never joining) interrupts it.
NORMAL_SHUTDOWNS = (
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
    conversation_url: str | None = None
    failure_code: str | None = None
    replica_id: str | None = None
    mentor_name: str | None = None
    start_time: datetime | None = None
    replica_joined_at: datetime | None = None
    shutdown_at: datetime | None = None
    shutdown_reason: str | None = None
    closed_at: datetime | None = None
    transcript: list[dict[str, Any]] | None = None
    transcript_digest: str | None = None
    recording: dict[str, Any] | None = None
    recording_digest: str | None = None
    perception_analysis: str | None = None
    #: Post-call actions keyed by their digest (a set that merges by union).
    post_call_actions: dict[str, Any] | None = None

    @property
    def has_ended(self) -> bool:
        return self.shutdown_at is not None or self.closed_at is not None


@dataclass(frozen=True, slots=True)
class Delta:
    """What one event or decision contributes to a conversation. None/False = nothing.

    - `conversation_id` binds the Tavus id when none is bound yet (a callback, a fetch).
    - `adopt`: Tavus has the conversation — an unresolved start becomes `active`, with
      `start_time` (unless it already ended) and `conversation_url`.
    - `fail`: Tavus never created it — an unresolved start becomes `failed`.
    - `unresolved`: Tavus may have created it — `starting` becomes `indeterminate`.
    - `failure_code` is recorded with whichever of those applies (or with `closed_at`).
    - The rest are facts from Tavus's events (`joined_at`, `shutdown_*`, `transcript`,
      `recording`, `perception_analysis`, `post_call_action`) or our end call (`closed_at`).

    A `failed` conversation never ran for the user: nothing changes it any more, except that
    an event naming its Tavus id binds that id (so the reconciler can end what Tavus has).
    """

    conversation_id: str | None = None
    adopt: bool = False
    start_time: datetime | None = None
    conversation_url: str | None = None
    fail: bool = False
    unresolved: bool = False
    failure_code: str | None = None
    joined_at: datetime | None = None
    shutdown_at: datetime | None = None
    shutdown_reason: str | None = None
    closed_at: datetime | None = None
    transcript: list[dict[str, Any]] | None = None
    recording: dict[str, Any] | None = None
    perception_analysis: str | None = None
    post_call_action: dict[str, Any] | None = None
    #: Digests of the values above, computed once (`with_digests`).
    digests: dict[str, str] = field(default_factory=dict, compare=False)

    def with_digests(self) -> Delta:
        """This delta with the digests of its transcript, recording and post-call action."""
        digests = {
            name: canonical_digest(value)
            for name, value in (
                ("transcript", self.transcript),
                ("recording", self.recording),
                ("post_call_action", self.post_call_action),
            )
            if value is not None
        }
        return replace(self, digests=digests)


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
    return reason is not None and reason.startswith(NORMAL_SHUTDOWNS)


_SPEECH_MARKER = re.compile(r"USER_SPEECH:\s*(.*?)\s*(?:VISUAL_SCENE:.*)?$", re.DOTALL)


def transcript_blocks(entries: list[dict[str, Any]] | None) -> list[tuple[str | None, str]]:
    """The readable transcript as `(speaker, words)` blocks, without the system prompt and
    the `USER_SPEECH:` / `VISUAL_SCENE:` markers of older payloads. The mentor's speaker is
    None: it is filled in with the mentor's name where the blocks are rendered."""
    blocks: list[tuple[str | None, str]] = []
    for entry in entries or []:
        role = str(entry.get("role", "")).strip().lower()
        content = entry.get("content")
        if role == "system" or not isinstance(content, str) or not content.strip():
            continue
        match = _SPEECH_MARKER.search(content)
        text = (match.group(1) if match else content).strip()
        if not text:
            continue
        speaker = {"user": "User", "assistant": None}.get(role, role.title() or "?")
        blocks.append((speaker, text))
    return blocks


def render_transcript(blocks: list[tuple[str | None, str]], mentor: str | None) -> str | None:
    """`Speaker: words` paragraphs; the mentor speaks under its name (or "Mentor")."""
    text = "\n\n".join(f"{speaker or mentor or 'Mentor'}: {words}" for speaker, words in blocks)
    return text or None


def readable_transcript(entries: list[dict[str, Any]] | None, mentor: str | None) -> str | None:
    return render_transcript(transcript_blocks(entries), mentor)


def _earliest(current: datetime | None, new: datetime | None) -> datetime | None:
    if current is None:
        return new
    if new is None:
        return current
    return min(current, new)


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def canonical_digest(value: Any) -> str:
    """A stable digest of a JSON value (key order does not matter): the tie-break of the
    merges, stored beside the value so that PostgreSQL compares exactly what Python does."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


# --- the merge ---------------------------------------------------------------------------
def merge(state: ConversationState, delta: Delta) -> ConversationState:
    """The conversation's facts after `delta` (see `Delta` for each part's rule)."""
    if not delta.digests:
        delta = delta.with_digests()
    old = state.status
    state = replace(
        state, tavus_conversation_id=state.tavus_conversation_id or delta.conversation_id
    )
    if old == ConversationStatus.failed:
        return state
    transition = _transition(state, delta)
    if transition is not None:
        status, code_applies = transition
    else:
        status, code_applies = old, False
    if delta.failure_code is not None and code_applies:
        state = replace(state, failure_code=delta.failure_code)
    state = replace(state, status=status)
    if status == ConversationStatus.failed:
        return state
    if delta.adopt and delta.start_time is not None and not state.has_ended:
        # Ended before Tavus answered: the user never had the session, so it gets no start
        # time (and no duration); the id is kept so the conversation gets ended.
        state = replace(state, start_time=state.start_time or delta.start_time)
    if delta.conversation_url is not None:
        state = replace(state, conversation_url=delta.conversation_url)
    state = replace(state, replica_joined_at=_earliest(state.replica_joined_at, delta.joined_at))
    if delta.shutdown_at is not None:
        state = _shut_down(state, delta.shutdown_at, delta.shutdown_reason)
    if delta.closed_at is not None:
        state = replace(state, closed_at=state.closed_at or delta.closed_at)
    if delta.transcript is not None:
        state = _with_transcript(state, delta.transcript, delta.digests["transcript"])
    if delta.recording is not None:
        state = _with_recording(state, delta.recording, delta.digests["recording"])
    if delta.perception_analysis is not None:
        state = _with_perception(state, delta.perception_analysis)
    if delta.post_call_action is not None:
        actions = dict(state.post_call_actions or {})
        actions[delta.digests["post_call_action"]] = delta.post_call_action
        state = replace(state, post_call_actions=actions)
    return state


def _transition(state: ConversationState, delta: Delta) -> tuple[str, bool] | None:
    """(new status, whether the delta's failure code applies), or None for no change."""
    status = state.status
    unresolved = status in UNRESOLVED_STATUSES
    if delta.fail:
        return (ConversationStatus.failed.value, True) if unresolved else None
    if delta.shutdown_at is not None or delta.closed_at is not None:
        return ConversationStatus.ended.value, True
    if (delta.joined_at is not None or delta.adopt) and unresolved:
        return ConversationStatus.active.value, True
    if delta.unresolved:
        if status == ConversationStatus.starting:
            return ConversationStatus.indeterminate.value, True
        return None
    return None


def _shut_down(state: ConversationState, at: datetime, reason: str | None) -> ConversationState:
    """Tavus closed the room. The earliest shutdown wins; ties break on the reason."""
    if (
        state.shutdown_at is None
        or at < state.shutdown_at
        or (at == state.shutdown_at and (reason or "") < (state.shutdown_reason or ""))
    ):
        return replace(state, shutdown_at=at, shutdown_reason=reason)
    return state


def _with_transcript(
    state: ConversationState, entries: list[dict[str, Any]], digest: str
) -> ConversationState:
    # Duplicates carry the same transcript; if two ever differ, the longer wins, then the one
    # with the smaller digest: a total order, so arrival order does not matter.
    if state.transcript is not None and (
        -len(state.transcript),
        state.transcript_digest or "",
    ) <= (-len(entries), digest):
        return state
    return replace(state, transcript=entries, transcript_digest=digest)


def _recording_rank(recording: dict[str, Any], digest: str) -> tuple[int, str]:
    # A ready recording beats a failed copy; among equals the smaller digest wins.
    return (0 if recording.get("status") == "ready" else 1, digest)


def _with_recording(
    state: ConversationState, recording: dict[str, Any], digest: str
) -> ConversationState:
    if state.recording is not None and _recording_rank(
        state.recording, state.recording_digest or ""
    ) <= _recording_rank(recording, digest):
        return state
    return replace(state, recording=recording, recording_digest=digest)


def _with_perception(state: ConversationState, analysis: str) -> ConversationState:
    if state.perception_analysis is not None and state.perception_analysis <= analysis:
        return state
    return replace(state, perception_analysis=analysis)


# --- derivation --------------------------------------------------------------------------
def started_at(state: ConversationState) -> datetime | None:
    """When the session started: Tavus's creation time once its create was recorded, else
    when the replica joined — unless our side closed it before the create was recorded: the
    user never had the room then, so it never started, whatever Tavus reports afterwards
    (its replica may join before our end reaches Tavus)."""
    if state.start_time is not None:
        return state.start_time
    return state.replica_joined_at if state.closed_at is None else None


def ended_at(state: ConversationState) -> datetime | None:
    """When the session ended: Tavus's shutdown time, else our end's. Never before it started
    (Tavus's clock and ours differ)."""
    end = state.shutdown_at or state.closed_at
    start = started_at(state)
    if end is not None and start is not None and end < start:
        return start
    return end


def session_status(state: ConversationState) -> SessionStatus:
    """`daily_sessions.session_status` from the conversation's facts."""
    if state.status == ConversationStatus.failed:
        return SessionStatus.failed
    if state.has_ended:
        ran = started_at(state) is not None and (
            state.shutdown_reason is None or is_normal_shutdown(state.shutdown_reason)
        )
        return SessionStatus.completed if ran else SessionStatus.interrupted
    if state.replica_joined_at is not None:
        return SessionStatus.in_progress
    return SessionStatus.started


def derive(state: ConversationState) -> SessionView:
    """The session as stored for reading, from the conversation's facts alone."""
    start, end_time = started_at(state), ended_at(state)
    duration = None
    if start is not None and end_time is not None:
        duration = max(0, int((end_time - start).total_seconds()))
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
        session_status=session_status(state).value,
        started_at=start,
        end_time=end_time,
        duration_seconds=duration,
        conversation_transcript=readable_transcript(state.transcript, state.mentor_name),
        session_metadata=metadata,
    )


def post_call_action_list(actions: dict[str, Any] | None) -> list[Any] | None:
    """The stored set of post-call actions as the API lists them (by digest)."""
    if actions is None:
        return None
    return [actions[key] for key in sorted(actions)]
