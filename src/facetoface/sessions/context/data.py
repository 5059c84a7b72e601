"""What the context is built from (rows and JSON the start's first round trip returns; lax
coercion of strings is intended) and what it is built into."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

# --------------------------------------------------------------------------------------------
# Input models (built by the repository from rows / JSON; lax coercion of strings is intended)
# --------------------------------------------------------------------------------------------


class ProfileData(BaseModel):
    """The ``profiles`` row, as far as the mentor needs it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    full_name: str
    language: str | None = "en"
    timezone: str | None = None


class OnboardingData(BaseModel):
    """The ``onboarding_profiles`` row (personality assessment)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    disc_type: Literal["D", "I", "S", "C"]
    enneagram_type: int | None = Field(default=None, ge=1, le=9)
    confidence_score: Decimal | None = Field(default=None, ge=Decimal("0.70"), le=Decimal("1.00"))
    personality_insights: dict[str, Any] | list[Any] | str | None = None


class RitualPreferencesData(BaseModel):
    """The ``ritual_preferences`` row. Enum-like columns stay ``str``: values outside the
    origin's CHECK sets are rendered as quoted user data rather than rejected."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    timing: str
    duration: str
    style: str
    voice_id: str
    focus_area: str
    session_frequency: str | None = None
    preferred_session_time: time | None = None


class EmotionalCategoryData(BaseModel):
    """One ``user_emotional_categories`` row; ``priority_level`` 1 is the highest priority."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    category: str
    priority_level: int = Field(default=1, ge=1, le=5)

    @field_validator("priority_level", mode="before")
    @classmethod
    def _null_priority_is_default(cls, value: object) -> object:
        return 1 if value is None else value


class GoalData(BaseModel):
    """One active ``user_goals`` row."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    #: The goal's id: the mentor names the goal by it in a tool call (`update_goal_progress`).
    goal_id: UUID | None = None
    goal_text: str
    goal_type: str | None = None
    smart_goal: str | None = None
    target_date: date | None = None
    progress_percentage: int = Field(default=0, ge=0, le=100)

    @field_validator("progress_percentage", mode="before")
    @classmethod
    def _null_progress_is_zero(cls, value: object) -> object:
        return 0 if value is None else value


class PreviousSessionData(BaseModel):
    """One earlier session of the user that ran and ended."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    started_at: datetime
    duration_seconds: int | None = Field(default=None, ge=0)
    #: `daily_sessions.session_status`: `completed` or `interrupted`.
    status: str
    shutdown_reason: str | None = None


class GoalProgressData(BaseModel):
    """An active goal updated after the last session ended."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    goal_text: str
    smart_goal: str | None = None
    progress_percentage: int = Field(default=0, ge=0, le=100)
    updated_at: datetime

    @field_validator("progress_percentage", mode="before")
    @classmethod
    def _null_progress_is_zero(cls, value: object) -> object:
        return 0 if value is None else value


class MentorChangeData(BaseModel):
    """A change the mentor made to a goal in the latest session (tool call or report)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    goal_text: str
    #: `progress` (before → after percentages) or `added` (the goal was added).
    kind: str
    before: int | None = None
    after: int | None = None
    #: The user undid it since.
    undone: bool = False
    created_at: datetime


class ContinuityData(BaseModel):
    """What happened since last time: the user's previous sessions (any order), the user's own
    last lines of the most recent one (in the order they were said), and the active goals
    updated after it ended (any order)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    sessions: list[PreviousSessionData] = Field(default_factory=list)
    recap: list[str] = Field(default_factory=list)
    changed_goals: list[GoalProgressData] = Field(default_factory=list)
    mentor_changes: list[MentorChangeData] = Field(default_factory=list)


class UserContextData(BaseModel):
    """Everything the context is built from. Only active goals are passed in; `continuity` is
    None when there is nothing to carry over (or the user turned the mentor's memory off)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    profile: ProfileData | None = None
    onboarding: OnboardingData | None = None
    ritual: RitualPreferencesData | None = None
    emotional_categories: list[EmotionalCategoryData] = Field(default_factory=list)
    goals: list[GoalData] = Field(default_factory=list)
    mentor_name: str | None = None
    continuity: ContinuityData | None = None


# --------------------------------------------------------------------------------------------
# Output models
# --------------------------------------------------------------------------------------------


class ContextSection(BaseModel):
    """One part of the context. ``text`` is the block exactly as it appears in the context."""

    model_config = ConfigDict(frozen=True)

    name: str
    title: str
    text: str


class MentorContext(BaseModel):
    """The built context.

    ``text`` is sent to Tavus as ``conversational_context``; ``language`` goes to
    ``properties.language``; ``language_code`` is the recognised, normalised profile code
    (``None`` on fallback); ``language_fallback`` is True when the profile's code was unknown or
    missing and ``english`` was chosen; ``truncated`` is True when content was dropped or cut to
    respect ``max_chars``.
    """

    model_config = ConfigDict(frozen=True)

    text: str
    sections: list[ContextSection]
    language: str
    language_code: str | None
    language_fallback: bool
    truncated: bool
