"""Session helpers shared by integration tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, select, update

from facetoface.conversations.tokens import hash_callback_token, signed_callback_token
from facetoface.models import DailySession, MentorConversation, utcnow
from tests.conftest import RunningService
from tests.support.factories import create_user


@dataclass
class Started:
    session_id: str
    conversation_id: str
    callback_path: str
    user_id: uuid.UUID


async def start_quiet(service: RunningService) -> Started:
    """A started session whose simulator sends no callbacks: the test sends its own, to the
    callback URL the service gave Tavus."""
    service.sim.set_config(callback_drop_probability=1.0)
    user_id = await create_user(service.db)
    response = await service.client.post("/v1/sessions", headers=service.auth(user_id))
    assert response.status_code == 201, response.text
    body = response.json()
    [conversation] = [
        c
        for c in service.sim.conversations()["conversations"]
        if c["conversation_id"] == body["conversation_id"]
    ]
    path = conversation["callback_url"].removeprefix(service.url)
    return Started(body["id"], body["conversation_id"], path, user_id)


#: Settings under which one reconciler pass acts on everything at once (no grace periods) and
#: Tavus timeouts are short, for tests that run passes themselves.
EAGER_RECONCILER: dict[str, float] = {
    "reconcile_starting_grace_seconds": 0,
    "reconcile_overdue_grace_seconds": 0,
    "reconcile_settle_seconds": 0,
    "reconcile_live_check_seconds": 0,
    "tavus_read_timeout_seconds": 0.8,
    "tavus_total_timeout_seconds": 1.0,
}


@dataclass
class GivenSession:
    """A session a test put in a state with `given_session`."""

    user_id: uuid.UUID
    session_id: uuid.UUID
    mentor_conversation_id: uuid.UUID
    conversation_id: str | None


#: The daily session's status that goes with a conversation's (as `state.derive` gives it).
_SESSION_STATUS = {
    "starting": "started",
    "indeterminate": "started",
    "active": "in_progress",
    "ending": "in_progress",
    "ended": "completed",
    "failed": "failed",
}


async def given_session(
    service: RunningService,
    user_id: uuid.UUID | None = None,
    *,
    status: str = "active",
    age: timedelta | None = None,
    at_tavus: bool = True,
    **columns: Any,
) -> GivenSession:
    """A session of `user_id` (a new complete user if None) in `status`, started `age` ago.

    `at_tavus`: started through the API, so its conversation exists at the simulator (its
    callbacks are the simulator's business: silence them with `callback_drop_probability`
    first if the test wants its own); else rows only, as if Tavus was never reached.
    `columns` set any other `mentor_conversations` column (`tavus_conversation_id=None` for
    a start that died between its phases). This is the one place tests write a session's
    rows directly."""
    user_id = user_id or await create_user(service.db)
    if at_tavus:
        response = await service.client.post("/v1/sessions", headers=service.auth(user_id))
        assert response.status_code == 201, response.text
        body = response.json()
        session_id = uuid.UUID(body["id"])
        row_id = uuid.UUID(body["mentor_conversation_id"])
    else:
        session_id, row_id = uuid.uuid4(), uuid.uuid4()
        now = utcnow()
        async with service.db.transaction() as session:
            await session.execute(
                insert(DailySession).values(
                    id=session_id,
                    user_id=user_id,
                    session_type="face_to_face",
                    session_status="started",
                    session_date=now.date(),
                    created_at=now,
                    updated_at=now,
                )
            )
            await session.execute(
                insert(MentorConversation).values(
                    id=row_id,
                    user_id=user_id,
                    daily_session_id=session_id,
                    conversation_name=f"{service.name_prefix}{row_id}",
                    session_type="face_to_face",
                    status="starting",
                    callback_token_hash=b"\0" * 32,
                    version=0,
                    reconcile_attempts=0,
                    created_at=now,
                    updated_at=now,
                )
            )
    changes: dict[str, Any] = {"status": status, **columns}
    if status == "ended":
        changes.setdefault("end_time", utcnow())
    async with service.db.transaction() as session:
        if age is not None:
            then = utcnow() - age
            changes.setdefault("created_at", then)
            current = (
                await session.execute(
                    select(MentorConversation.start_time).where(MentorConversation.id == row_id)
                )
            ).scalar_one()
            if current is not None or status in ("active", "ending", "ended"):
                changes.setdefault("start_time", then)
        await session.execute(
            update(MentorConversation).where(MentorConversation.id == row_id).values(**changes)
        )
        await session.execute(
            update(DailySession)
            .where(DailySession.id == session_id)
            .values(session_status=_SESSION_STATUS[status])
        )
        conversation_id = (
            await session.execute(
                select(MentorConversation.tavus_conversation_id).where(
                    MentorConversation.id == row_id
                )
            )
        ).scalar_one()
    return GivenSession(user_id, session_id, row_id, conversation_id)


async def given_callback_token(service: RunningService, given: GivenSession) -> str:
    """A new callback token for `given`'s session, signed as the service signs the ones it
    gives Tavus (its hash stored in place of the old one); the token is returned."""
    token = signed_callback_token(
        service.settings.callback_signing_key, given.mentor_conversation_id
    )
    async with service.db.transaction() as session:
        await session.execute(
            update(MentorConversation)
            .where(MentorConversation.id == given.mentor_conversation_id)
            .values(callback_token_hash=hash_callback_token(token))
        )
    return token
