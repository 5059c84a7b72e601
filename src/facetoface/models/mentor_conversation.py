from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, LargeBinary, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from facetoface.conversations.status import LIVE_STATUSES_SQL, ConversationStatus, FailureCode
from facetoface.models.base import Base, IDMixin, JSONType, TimestampsMixin, check_in

SESSION_TYPES = ("face_to_face", "extended")
#: The one-live-session index's predicate: the live statuses (as migration 0001 spelt them).
LIVE_SQL = f"status IN ({LIVE_STATUSES_SQL})"
#: Ended sessions not yet compared with Tavus's record, or whose Tavus end failed: the
#: reconciler's `claim_unverified` condition, which its partial index (migration 0015) serves.
UNVERIFIED_SQL = (
    f"status = '{ConversationStatus.ended.value}' AND tavus_conversation_id IS NOT NULL"
    f" AND (callbacks_verified_at IS NULL OR failure_code = '{FailureCode.tavus_end_failed.value}')"
)


class MentorConversation(IDMixin, TimestampsMixin, Base):
    """One Tavus conversation, linked one-to-one to the user's `daily_sessions` row."""

    __tablename__ = "mentor_conversations"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("profiles.id", ondelete="CASCADE"))
    daily_session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("daily_sessions.id", ondelete="CASCADE"), unique=True
    )
    user_persona_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("user_personas.id", ondelete="SET NULL"), index=True
    )
    tavus_conversation_id: Mapped[str | None] = mapped_column(Text, unique=True)
    conversation_name: Mapped[str] = mapped_column(Text)
    conversation_url: Mapped[str | None] = mapped_column(Text)
    persona_id: Mapped[str | None] = mapped_column(Text)
    replica_id: Mapped[str | None] = mapped_column(Text)
    mentor_name: Mapped[str | None] = mapped_column(Text)
    mentor_avatar_url: Mapped[str | None] = mapped_column(Text)
    session_type: Mapped[str] = mapped_column(
        Text, default="face_to_face", server_default=text("'face_to_face'")
    )
    status: Mapped[str] = mapped_column(Text, default=ConversationStatus.starting)
    #: When Tavus created the conversation (billing starts), else when we asked it to.
    start_time: Mapped[datetime | None]
    end_time: Mapped[datetime | None]
    duration_seconds: Mapped[int | None]
    shutdown_reason: Mapped[str | None] = mapped_column(Text)
    #: Why we marked it failed/indeterminate (a stable code, never Tavus's raw message).
    failure_code: Mapped[str | None] = mapped_column(Text)
    #: From Tavus's callbacks: when the replica joined and when the room shut down.
    replica_joined_at: Mapped[datetime | None]
    shutdown_at: Mapped[datetime | None]
    #: When our end call closed the session (Tavus's shutdown time wins for `end_time`).
    closed_at: Mapped[datetime | None]
    #: From Tavus's callbacks (or the reconciler's verbose GET): the full transcript as Tavus
    #: sent it, the recording's storage location, the perception analysis, post-call actions.
    transcript: Mapped[Any | None] = mapped_column(JSONType)
    recording: Mapped[Any | None] = mapped_column(JSONType)
    perception_analysis: Mapped[str | None] = mapped_column(Text)
    #: A set keyed by each action's digest (merges are unions); the API lists the values.
    post_call_actions: Mapped[Any | None] = mapped_column(JSONType)
    #: Digests of `transcript` and `recording`: the tie-break when two copies differ, stored
    #: so that PostgreSQL's merge compares exactly what Python's does (conversations/state.py).
    transcript_digest: Mapped[str | None] = mapped_column(Text)
    recording_digest: Mapped[str | None] = mapped_column(Text)
    #: When the reconciler compared what Tavus reports for this ended session with what we
    #: stored, and filled the gaps (lost callbacks); done once per session.
    callbacks_verified_at: Mapped[datetime | None]
    #: The reconciler's last error on this row (a bounded code, never Tavus's raw text).
    reconcile_error: Mapped[str | None] = mapped_column(Text)
    #: A private room's join credential (Tavus's `meeting_token`), kept only while the session
    #: is live (a trigger clears it when the conversation ends or fails) and readable only by
    #: the service: users get it from the API, for their own live session only.
    meeting_token: Mapped[str | None] = mapped_column(Text)
    #: SHA-256 of the per-session callback token; the token itself is never stored.
    callback_token_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    #: The reconciler's lease: a replica working on this row owns it until then, so N
    #: replicas never work on the same row at once (claimed with FOR UPDATE SKIP LOCKED).
    reconcile_lease_until: Mapped[datetime | None]
    #: How often the reconciler has looked at this row at Tavus (it gives up after a few).
    reconcile_attempts: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    #: Bumped by every write: lets a writer that read the row earlier detect a concurrent
    #: change (optimistic concurrency) without holding a lock across a Tavus call.
    version: Mapped[int] = mapped_column(default=0, server_default=text("0"))

    __table_args__ = (
        CheckConstraint(check_in("status", tuple(ConversationStatus)), name="status"),
        CheckConstraint(check_in("session_type", SESSION_TYPES), name="session_type"),
        CheckConstraint("duration_seconds >= 0", name="duration_seconds"),
        # The database, not the application, guarantees one live session per user: a second
        # concurrent start loses the race on this index instead of creating a billed duplicate.
        Index(
            "uq_mentor_conversations_live_user_id",
            "user_id",
            unique=True,
            postgresql_where=text(LIVE_SQL),
        ),
        # A user's sessions newest first ("since last time", the quota), walked backward to
        # a limit: the id breaks ties in the key, so no sort (migration 0015).
        Index(None, "user_id", "created_at", "id"),
        # The reconciler's "recently ended, not yet compared with Tavus" claim
        # (`claim_unverified`): only the rows still waiting, by end time.
        Index(
            "ix_mentor_conversations_unverified_end_time",
            "end_time",
            postgresql_where=text(UNVERIFIED_SQL),
        ),
        # Retention's search for transcripts past their time (`expire_transcripts`).
        Index(
            "ix_mentor_conversations_transcript_end_time",
            "end_time",
            postgresql_where=text("transcript IS NOT NULL"),
        ),
        # The reconciler's scan: live rows by age.
        Index(
            "ix_mentor_conversations_live_updated_at",
            "status",
            "updated_at",
            postgresql_where=text(LIVE_SQL),
        ),
    )
