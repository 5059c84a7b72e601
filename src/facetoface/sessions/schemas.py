"""Request and response bodies of the sessions API."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field

from facetoface.conversations.repository import SessionRow


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


_MEETING_TOKEN = Field(
    default=None,
    description="Private rooms (`SESSION_PRIVATE_ROOMS`): the room's join credential, present "
    "only while the session is live and only in answers to its owner. Join with "
    "`conversation_url?t=<meeting_token>` (or Daily's `join({url, token})`).",
)


def join_url(conversation_url: str | None, meeting_token: str | None) -> str | None:
    """The room's address with a private room's token in it (`?t=`, as Daily's rooms take
    it): for the origin's app, which embeds `conversation_url` in an iframe as it is."""
    if conversation_url is None or not meeting_token:
        return conversation_url
    parts = urlsplit(conversation_url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "t"]
    return urlunsplit(parts._replace(query=urlencode([*query, ("t", meeting_token)])))


class OwnSessionOut(SessionOut):
    """A session in an answer to its owner alone: a start, its replay, a 409's `session`."""

    meeting_token: str | None = _MEETING_TOKEN

    @classmethod
    def for_owner(cls, row: SessionRow, meeting_token: str | None) -> OwnSessionOut:
        """`row` for its owner, with a private room's token when there is one."""
        return cls(**SessionOut.from_row(row).model_dump(), meeting_token=meeting_token)

    def to_json(self) -> dict[str, Any]:
        """The JSON body; `meeting_token` only when there is one."""
        hidden = None if self.meeting_token else {"meeting_token"}
        return self.model_dump(mode="json", exclude=hidden)


class SessionPage(BaseModel):
    """One page of the caller's sessions, newest first."""

    items: list[SessionOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class TimelineEvent(BaseModel):
    event_type: str
    occurred_at: datetime | None = Field(description="Tavus's timestamp of the event.")
    received_at: datetime
    outcome: str = Field(description="applied | no_effect | ignored")


class TranscriptEntry(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    content: str


class SessionReportOut(BaseModel):
    """The mentor's post-call report of a session (Tavus's `session_report` action)."""

    summary: str
    next_steps: list[str]
    mood: str | None
    received_at: datetime
    billed_duration_seconds: int | None = Field(
        description="How long the call ran (what Tavus bills), when known."
    )
    estimated_cost: float | None = Field(
        default=None,
        description="billed minutes × TAVUS_COST_PER_MINUTE, rounded to cents; absent when "
        "the deployment sets no price.",
    )

    @classmethod
    def build(
        cls, stored: dict[str, Any], duration_seconds: int | None, per_minute: Decimal | None
    ) -> SessionReportOut:
        """The report as shown, with the cost estimated from the billed duration."""
        cost = None
        if per_minute is not None and duration_seconds is not None:
            exact = Decimal(duration_seconds) / 60 * per_minute
            cost = float(exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
        steps = stored.get("next_steps")
        return cls(
            summary=stored.get("summary") or "",
            next_steps=[s for s in steps if isinstance(s, str)] if isinstance(steps, list) else [],
            mood=stored.get("mood"),
            received_at=stored["received_at"],
            billed_duration_seconds=duration_seconds,
            estimated_cost=cost,
        )


class SessionDetail(OwnSessionOut):
    """A session with what Tavus sent after the call (and, while it is live, a private
    room's meeting token)."""

    replica_joined_at: datetime | None
    transcript: list[TranscriptEntry] | None = Field(
        description="The conversation as Tavus recorded it, without the system prompt."
    )
    transcript_text: str | None = Field(description="The transcript as readable text.")
    recording: dict[str, Any] | None
    perception_analysis: str | None
    post_call_actions: list[dict[str, Any]] | None
    events: list[TimelineEvent]
    report: SessionReportOut | None = Field(
        default=None, description="The mentor's post-call report, once Tavus sent it."
    )

    def to_json(self) -> dict[str, Any]:
        """The JSON body; a report's `estimated_cost` only when the deployment sets a price."""
        body = super().to_json()
        if self.report is not None and self.report.estimated_cost is None:
            body["report"].pop("estimated_cost", None)
        return body


class ContextSectionOut(BaseModel):
    name: str
    title: str
    text: str


class MentorPreview(BaseModel):
    name: str | None
    persona_id: str | None
    replica_id: str | None


class ContextPreview(BaseModel):
    """What the mentor would be told if the caller started a session now."""

    text: str = Field(description="Exactly what is sent to Tavus as `conversational_context`.")
    sections: list[ContextSectionOut]
    language: str = Field(description="Tavus's language name for the call.")
    truncated: bool
    mentor: MentorPreview
