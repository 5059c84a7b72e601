"""What a start loads and decides before Tavus is called: the caps on the context's rows and
text, the mentor the first round trip chose, the context built from what it loaded, and the
problem a refusal answers with."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from facetoface.config import Settings
from facetoface.errors import ProfileNotFound
from facetoface.sessions.context import (
    ContinuityData,
    MentorContext,
    UserContextData,
    build_mentor_context,
)
from facetoface.sessions.errors import (
    ErasureInProgress,
    MentorNotFound,
    NoMentorConfigured,
    PremiumMentorRequired,
    TooManyStarts,
)
from facetoface.sessions.repository import StartAttempt, StartLimits
from facetoface.sessions.start_protocol import Refusal

log = structlog.get_logger(__name__)

#: Context rows and characters the database returns, as multiples of the context's own caps:
#: enough that the builder's choice is unaffected, bounded whatever a user stored.
_ROWS_HEADROOM = 4
_MAX_GOALS = 5
_MAX_CATEGORIES = 8
#: "Since last time": previous sessions listed, the user's own last lines of the latest one,
#: goals updated since it ended (exact: the database returns no more than the builder shows).
_MAX_PREVIOUS_SESSIONS = 3
_MAX_RECAP_LINES = 3
_MAX_CHANGED_GOALS = 3


@dataclass(frozen=True, slots=True)
class MentorChoice:
    """The mentor a start uses (or a preview shows)."""

    persona_id: str | None
    replica_id: str | None
    name: str | None
    avatar_url: str | None


def mentor_of(attempt: StartAttempt) -> MentorChoice:
    """The mentor the start's first round trip chose."""
    return MentorChoice(
        persona_id=attempt.persona_id,
        replica_id=attempt.replica_id,
        name=attempt.mentor_name,
        avatar_url=attempt.mentor_avatar_url,
    )


def start_limits(settings: Settings, now: datetime) -> StartLimits:
    """What bounds a start now: the quota's window and the context's caps in rows and text."""
    s = settings
    window = timedelta(seconds=s.session_start_limit_window_seconds)
    return StartLimits(
        recent_since=now - window,
        start_limit=s.session_start_limit,
        goal_rows=_MAX_GOALS * _ROWS_HEADROOM,
        category_rows=_MAX_CATEGORIES * _ROWS_HEADROOM,
        text_chars=s.context_item_max_chars * _ROWS_HEADROOM,
        default_persona_id=s.default_persona_id,
        default_replica_id=s.default_replica_id,
        previous_rows=_MAX_PREVIOUS_SESSIONS,
        recap_rows=_MAX_RECAP_LINES,
        changed_goal_rows=_MAX_CHANGED_GOALS,
    )


def mentor_context(
    settings: Settings, attempt: StartAttempt, mentor: MentorChoice
) -> MentorContext:
    """The context built from what the start's first round trip loaded."""
    context_data = UserContextData.model_validate(
        {
            "profile": attempt.profile,
            "onboarding": attempt.onboarding,
            "ritual": attempt.ritual,
            "emotional_categories": attempt.categories,
            "goals": attempt.goals,
            "mentor_name": mentor.name,
            "continuity": (
                ContinuityData.model_validate(
                    {
                        "sessions": attempt.previous_sessions,
                        "recap": attempt.recap,
                        "changed_goals": attempt.changed_goals,
                        "mentor_changes": attempt.mentor_changes,
                    }
                )
                if attempt.mentor_memory and attempt.previous_sessions
                else None
            ),
        }
    )
    context = build_mentor_context(
        context_data,
        max_chars=settings.context_max_chars,
        item_max_chars=settings.context_item_max_chars,
        max_goals=_MAX_GOALS,
        max_categories=_MAX_CATEGORIES,
        max_previous_sessions=_MAX_PREVIOUS_SESSIONS,
        max_recap_lines=_MAX_RECAP_LINES,
        max_changed_goals=_MAX_CHANGED_GOALS,
    )
    if context.language_fallback:
        log.info("session.language_fallback", language_code=context.language_code)
    return context


def refusal_problem(settings: Settings, attempt: StartAttempt, now: datetime) -> Exception:
    """The problem a refused start answers with (the order is the function's)."""
    refusal = attempt.refusal
    if refusal is Refusal.erasure_in_progress:
        return ErasureInProgress("This account's data is being erased; no session can start.")
    if refusal is Refusal.profile_not_found:
        return ProfileNotFound("Create the user's profile before starting a session.")
    if refusal is Refusal.mentor_not_found:
        return MentorNotFound("No mentor with this id belongs to you.")
    if refusal is Refusal.premium_mentor_required:
        return PremiumMentorRequired("Choose another mentor or upgrade the subscription.")
    if refusal is Refusal.rate_limited:
        window = timedelta(seconds=settings.session_start_limit_window_seconds)
        oldest = attempt.oldest_recent_start or now
        retry = max(1, math.ceil((oldest + window - now).total_seconds()))
        return TooManyStarts(
            f"At most {settings.session_start_limit} sessions per "
            f"{int(window.total_seconds())} s; try again later.",
            headers={"Retry-After": str(retry)},
        )
    if refusal is Refusal.mentor_not_configured:
        return NoMentorConfigured(
            "Set TAVUS_DEFAULT_PAL_ID or TAVUS_DEFAULT_FACE_ID, or give the user a "
            "mentor with a Tavus persona or replica."
        )
    raise AssertionError(f"unexpected start refusal {refusal!r}")
