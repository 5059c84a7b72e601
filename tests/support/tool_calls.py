"""Signed tool calls and post-call actions, as Tavus delivers them, and a snapshot of what
the mentor's actions may change (to assert a refused call changed nothing)."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from typing import Any

import httpx
from sqlalchemy import select, text

from facetoface.models import GoalChange, MentorToolCall, SessionReport, UserGoal
from facetoface.tools.signature import SIGNATURE_HEADER
from tests.conftest import RunningService

REPORT_PATH = "/v1/tavus/post-call/session_report"


def tool_path(name: str) -> str:
    return f"/v1/tavus/tools/{name}"


def call_body(
    conversation_id: str | None, arguments: dict[str, Any], call_id: str | None = None
) -> bytes:
    """The body we templated at registration."""
    return json.dumps(
        {
            "conversation_id": conversation_id,
            "tool_call_id": call_id or f"call_{uuid.uuid4().hex}",
            "arguments": arguments,
        }
    ).encode()


async def deliver(
    service: RunningService,
    path: str,
    body: bytes,
    *,
    secret: str | None = None,
    signed_body: bytes | None = None,
    signature: bool = True,
) -> httpx.Response:
    """POST `body` signed like Tavus (with `secret`, default the service's; over
    `signed_body` if given: a body changed after signing)."""
    headers = {"Content-Type": "application/json"}
    if signature:
        key = secret if secret is not None else service.settings.tool_secret
        assert key is not None
        # Signed here as Tavus documents it (lowercase hex HMAC-SHA256 of the raw body), not
        # with the service's own function: a change to the service's scheme must fail these.
        signed = signed_body if signed_body is not None else body
        headers[SIGNATURE_HEADER] = hmac.new(key.encode(), signed, hashlib.sha256).hexdigest()
    return await service.client.post(path, content=body, headers=headers)


async def goal_id(service: RunningService, user_id: uuid.UUID, text: str) -> uuid.UUID:
    async with service.db.transaction() as session:
        found: uuid.UUID = (
            await session.execute(
                select(UserGoal.id).where(UserGoal.user_id == user_id, UserGoal.goal_text == text)
            )
        ).scalar_one()
    return found


async def progress(service: RunningService, goal: uuid.UUID) -> int:
    async with service.db.transaction() as session:
        value: int = (
            await session.execute(select(UserGoal.progress_percentage).where(UserGoal.id == goal))
        ).scalar_one()
    return value


async def snapshot(service: RunningService) -> dict[str, Any]:
    """Every row the mentor's actions write or change."""
    async with service.db.transaction() as session:
        goals = (
            await session.execute(
                select(
                    UserGoal.id, UserGoal.progress_percentage, UserGoal.status, UserGoal.updated_at
                ).order_by(UserGoal.id)
            )
        ).all()
        changes = (await session.execute(select(GoalChange.id, GoalChange.undone_at))).all()
        calls = (
            await session.execute(select(MentorToolCall.tool_call_id, MentorToolCall.changes))
        ).all()
        reports = (await session.execute(select(SessionReport.mentor_conversation_id))).all()
    return {
        "goals": [tuple(r) for r in goals],
        "changes": sorted(tuple(r) for r in changes),
        "calls": sorted(tuple(r) for r in calls),
        "reports": sorted(tuple(r) for r in reports),
        "app events": await app_events(service),
    }


async def app_events(service: RunningService, *types: str) -> list[dict[str, Any]]:
    """The app's webhook events about the mentor's actions (`goal.changed`,
    `session.report_ready`, or `types`), oldest first: their payloads, with their type."""
    wanted = list(types or ("goal.changed", "session.report_ready"))
    async with service.db.transaction() as session:
        rows = await session.execute(
            text(
                "SELECT event_type, data FROM webhook_events WHERE event_type = ANY(:types) "
                "ORDER BY occurred_at, created_at, event_key"
            ),
            {"types": wanted},
        )
        return [{"type": event_type, **data} for event_type, data in rows]
