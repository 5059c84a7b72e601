"""No user's data can make a start slow: the context query caps rows and characters itself.

A user may write their own goals and focus areas (Supabase's REST API lets `authenticated`
insert them): here, 60 active goals of 20 KB each (three times the rows, 25 times the
characters). The start's first round trip returns at most `goal_rows` goals of at most
`text_chars` characters each, and the start works.
"""

from __future__ import annotations

import uuid

from sqlalchemy import insert

from facetoface.db import Identity
from facetoface.models import UserGoal, utcnow
from facetoface.sessions.loading import start_limits
from facetoface.sessions.repository import SessionRepository
from tests.conftest import RunningService
from tests.support.factories import create_user

HUGE = "word " * 4_000  # 20 KB: 25 times the characters a goal may bring


async def test_a_user_with_huge_goals_gets_a_bounded_context(service: RunningService) -> None:
    user_id = await create_user(service.db)
    async with service.db.transaction() as session:
        await session.execute(
            insert(UserGoal),
            [
                {
                    "id": uuid.uuid4(),
                    "user_id": user_id,
                    "goal_text": f"{n} {HUGE}",
                    "smart_goal": HUGE,
                    "status": "active",
                    "progress_percentage": n % 100,
                }
                for n in range(60)
            ],
        )

    now = utcnow()
    limits = start_limits(service.settings, now)
    attempt = await SessionRepository(service.state.db).start(
        Identity(user_id), mentor_id=None, now=now, limits=limits, new=None, key=None
    )
    assert 0 < len(attempt.goals) <= limits.goal_rows
    for goal in attempt.goals:
        assert len(goal["goal_text"]) <= limits.text_chars
        assert len(goal["smart_goal"] or "") <= limits.text_chars

    preview = await service.client.get("/v1/me/context", headers=service.auth(user_id))
    assert preview.status_code == 200
    assert len(preview.json()["text"]) <= service.settings.context_max_chars
    started = await service.client.post("/v1/sessions", headers=service.auth(user_id))
    assert started.status_code == 201, started.text
