"""The context's goal ids and its account of what the mentor changed last time (pure)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from facetoface.sessions.context import build_mentor_context
from facetoface.sessions.context.data import UserContextData

GOAL = uuid.UUID("6a1f3c52-9d0e-4b7a-8c21-3f5e7d9b0a14")
WHEN = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def data(**continuity: object) -> UserContextData:
    return UserContextData.model_validate(
        {
            "profile": {"full_name": "Ana", "language": "en"},
            "goals": [{"goal_id": str(GOAL), "goal_text": "Meditate", "progress_percentage": 60}],
            "continuity": {
                "sessions": [{"started_at": WHEN, "duration_seconds": 300, "status": "completed"}],
                **continuity,
            },
        }
    )


def test_each_goal_is_listed_with_its_id() -> None:
    text = build_mentor_context(data()).text
    assert f"- «Meditate» (60% done, goal_id {GOAL})" in text


def test_what_the_mentor_changed_and_whether_the_user_kept_it() -> None:
    changes = [
        {
            "goal_text": "Meditate",
            "kind": "progress",
            "before": 40,
            "after": 60,
            "undone": True,
            "created_at": WHEN,
        },
        {"goal_text": "Run <b>5 km</b>\n", "kind": "added", "undone": False, "created_at": WHEN},
    ]

    text = build_mentor_context(data(mentor_changes=changes)).text

    assert "- Last session you moved «Meditate» from 40% to 60%; the user undid this" in text
    assert "- Last session you added the goal «Run <b>5 km</b>»; the user kept it" in text
    # The same changes in another order give the same context.
    assert build_mentor_context(data(mentor_changes=changes[::-1])).text == text
