"""What Tavus sends (tool calls, the session report) and what the user API answers."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from facetoface.models.mentor_action import ChangeSource, GoalChangeKind
from facetoface.models.user_goal import GOAL_TYPES
from facetoface.tavus.mentor_tools import (
    FACT_MAX_CHARS,
    GOAL_TEXT_MAX_CHARS,
    MAX_GOAL_UPDATES,
    MAX_NEXT_STEPS,
    MOOD_MAX_CHARS,
    NEXT_STEP_MAX_CHARS,
    NOTE_MAX_CHARS,
    SUMMARY_MAX_CHARS,
)


def _text(max_chars: int) -> StringConstraints:
    """Text from the model: surrounding whitespace dropped, never empty, bounded."""
    return StringConstraints(strip_whitespace=True, min_length=1, max_length=max_chars)


Note = Annotated[str, _text(NOTE_MAX_CHARS)]
GoalText = Annotated[str, _text(GOAL_TEXT_MAX_CHARS)]
Fact = Annotated[str, _text(FACT_MAX_CHARS)]
Summary = Annotated[str, _text(SUMMARY_MAX_CHARS)]
NextStep = Annotated[str, _text(NEXT_STEP_MAX_CHARS)]
Mood = Annotated[str, _text(MOOD_MAX_CHARS)]


# --- what Tavus sends ------------------------------------------------------------------------
class ToolCallBody(BaseModel):
    """The body we templated at registration (tavus/mentor_tools.py)."""

    model_config = ConfigDict(extra="ignore")

    conversation_id: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    tool_call_id: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    arguments: dict[str, Any] = Field(default_factory=dict)


class UpdateGoalProgressArgs(BaseModel):
    model_config = ConfigDict(extra="ignore")

    goal_id: uuid.UUID
    progress_percentage: int = Field(ge=0, le=100)
    note: Note | None = None


class AddGoalArgs(BaseModel):
    model_config = ConfigDict(extra="ignore")

    goal_text: GoalText
    goal_type: str | None = None
    target_date: date | None = None

    @field_validator("goal_type")
    @classmethod
    def _known_type(cls, value: str | None) -> str | None:
        if value is not None and value not in GOAL_TYPES:
            raise ValueError(f"goal_type must be one of {', '.join(GOAL_TYPES)}")
        return value


class RememberArgs(BaseModel):
    model_config = ConfigDict(extra="ignore")

    fact: Fact


class GoalUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    goal_id: uuid.UUID
    progress_percentage: int = Field(ge=0, le=100)


class SessionReportArgs(BaseModel):
    model_config = ConfigDict(extra="ignore")

    summary: Summary
    next_steps: list[NextStep] = Field(default_factory=list, max_length=MAX_NEXT_STEPS)
    goal_updates: list[GoalUpdate] = Field(default_factory=list, max_length=MAX_GOAL_UPDATES)
    mood: Mood | None = None


# --- the user API ----------------------------------------------------------------------------
class GoalChangeOut(BaseModel):
    """One change the mentor made to a goal."""

    id: uuid.UUID
    goal_id: uuid.UUID
    goal_text: str
    session_id: uuid.UUID = Field(description="The session it was made in.")
    kind: GoalChangeKind = Field(description="progress: the progress moved; added: a new goal.")
    source: ChangeSource = Field(
        description="tool: during the call; report: from the session report after it."
    )
    before: int | None = Field(description="Progress before, in percent (null: added).")
    after: int | None = Field(description="Progress after, in percent.")
    note: str | None
    created_at: datetime
    undone_at: datetime | None = Field(description="When the user undid it (null: in effect).")


class GoalChangePage(BaseModel):
    items: list[GoalChangeOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class PinnedMemoryOut(BaseModel):
    id: str = Field(description="Forget it with DELETE /v1/me/memory/pinned/{id}.")
    text: str
    created_at: datetime | None


class MemoryOut(BaseModel):
    """What the mentor remembers of the caller, as Tavus keeps it."""

    enabled: bool = Field(
        description="Whether the mentor remembers now (the deployment uses Tavus memory "
        "and the caller's `mentor_memory` preference is on)."
    )
    pinned: list[PinnedMemoryOut]
    profile: dict[str, Any] | None = Field(description="Learned: facts Tavus consolidated.")
    timeline: dict[str, Any] | list[Any] | None = Field(
        description="Learned: recent conversations, as Tavus summarised them."
    )


class MemoryForgotten(BaseModel):
    memory_stores_deleted: int
