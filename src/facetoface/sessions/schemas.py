"""Request and response bodies of the sessions API."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from facetoface.sessions.repository import SessionRow


class StartSessionRequest(BaseModel):
    """Body of `POST /v1/sessions`. Everything else (user, callback URL, Tavus ids) is ours."""

    model_config = ConfigDict(extra="forbid")

    mentor_id: uuid.UUID | None = Field(
        default=None,
        description="One of the caller's `user_personas` ids; default: the active one.",
    )


class MentorOut(BaseModel):
    name: str | None
    avatar_url: str | None


class SessionOut(BaseModel):
    """A face-to-face session as clients see it."""

    id: uuid.UUID = Field(description="The `daily_sessions` id; use it to end or read it.")
    mentor_conversation_id: uuid.UUID
    conversation_id: str | None = Field(description="Tavus's conversation id.")
    conversation_url: str | None = Field(description="Where the user joins the video call.")
    status: str = Field(description="started | in_progress | completed | interrupted | failed")
    started_at: datetime | None
    ended_at: datetime | None
    duration_seconds: int | None
    shutdown_reason: str | None
    mentor: MentorOut
    created_at: datetime

    @classmethod
    def from_row(cls, row: SessionRow) -> SessionOut:
        return cls(
            id=row.id,
            mentor_conversation_id=row.mentor_conversation_id,
            conversation_id=row.tavus_conversation_id,
            conversation_url=row.conversation_url,
            status=row.session_status,
            started_at=row.started_at,
            ended_at=row.completed_at,
            duration_seconds=row.duration_seconds,
            shutdown_reason=row.shutdown_reason,
            mentor=MentorOut(name=row.mentor_name, avatar_url=row.mentor_avatar_url),
            created_at=row.created_at,
        )
