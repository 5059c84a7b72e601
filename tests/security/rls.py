"""Helpers of the row-level security tests (the fixtures are in conftest.py)."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from facetoface.config import Settings
from facetoface.conversations.tokens import hash_callback_token
from facetoface.db import Database, Identity, Role
from facetoface.models import DailySession, MentorConversation, TavusCallbackEvent, utcnow
from tests.support.factories import create_persona, create_user


def db_settings(url: str, **overrides: Any) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None, environment="test", log_level="WARNING", database_url=url, **overrides
    )


@dataclass
class User:
    id: uuid.UUID
    identity: Identity
    session_id: uuid.UUID  # daily_sessions.id (the API's session id)
    conversation_id: uuid.UUID  # mentor_conversations.id
    tavus_conversation_id: str
    persona_id: uuid.UUID


async def make_user(owner: Database, name: str) -> User:
    """A complete user (profile, assessment, goals, mentor) with one active session and one
    stored callback event, written by the owner."""
    user_id = await create_user(owner, full_name=name)
    persona_id = await create_persona(owner, user_id)
    daily_id, row_id = uuid.uuid4(), uuid.uuid4()
    tavus_id = f"c{uuid.uuid4().hex[:12]}"
    now = utcnow()
    async with owner.transaction() as session:
        session.add(
            DailySession(
                id=daily_id,
                user_id=user_id,
                session_type="face_to_face",
                session_status="in_progress",
                session_date=now.date(),
                started_at=now,
            )
        )
        await session.flush()
        session.add(
            MentorConversation(
                id=row_id,
                user_id=user_id,
                daily_session_id=daily_id,
                conversation_name=f"facetoface:{row_id}",
                status="active",
                tavus_conversation_id=tavus_id,
                start_time=now,
                callback_token_hash=hash_callback_token(secrets.token_urlsafe(16)),
            )
        )
        await session.flush()
        session.add(
            TavusCallbackEvent(
                mentor_conversation_id=row_id,
                conversation_id=tavus_id,
                event_type="system.replica_joined",
                dedupe_key=f"{row_id}:system.replica_joined",
                payload={"event_type": "system.replica_joined"},
                outcome="applied",
                received_at=now,
            )
        )
    claims = {"sub": str(user_id), "role": "authenticated", "email": f"{name}@example.com"}
    return User(user_id, Identity(user_id, claims), daily_id, row_id, tavus_id, persona_id)


async def rows(
    db: Database,
    sql: str,
    params: dict[str, Any] | None = None,
    *,
    identity: Identity | None = None,
    role: Role | None = None,
) -> list[Any]:
    """Run one statement in its own transaction; its rows (empty for a write)."""
    async with db.transaction(identity, role=role) as session:
        result = await session.execute(text(sql), params or {})
        return list(result.all()) if result.returns_rows else []


async def rowcount(
    db: Database,
    sql: str,
    params: dict[str, Any] | None = None,
    *,
    identity: Identity | None = None,
    role: Role | None = None,
) -> int:
    async with db.transaction(identity, role=role) as session:
        result: Any = await session.execute(text(sql), params or {})
        return int(result.rowcount)


async def sqlstate_of(
    db: Database,
    sql: str,
    params: dict[str, Any] | None = None,
    *,
    identity: Identity | None = None,
    role: Role | None = None,
) -> str | None:
    """The SQLSTATE the statement fails with (None if it succeeds)."""
    try:
        await rows(db, sql, params, identity=identity, role=role)
    except DBAPIError as exc:
        return getattr(exc.orig, "sqlstate", None)
    return None


#: insufficient_privilege: a missing grant, or a row refused by a policy's WITH CHECK.
DENIED = "42501"
