"""The outbox of the app's webhooks: events recorded in the same transaction as what they
report, delivered later by `facetoface.webhooks` (any replica, under a lease).

The core, not a feature, because several features record events: the session events are
written by the database itself (a trigger, `sql/enqueue_session_events.sql`); a feature
records its own with `enqueue` inside the transaction that makes the change:

    from facetoface.outbox import EventType, enqueue

    async with db.transaction(identity, role="user") as session:
        ...  # the goal change, as the user
        await enqueue(
            session,
            EventType.goal_changed,
            {"user_id": user_id, "goal_id": goal_id, "change_id": change_id,
             "session_id": session_id, "kind": "progress", "source": "tool",
             "progress_before": 40, "progress_after": 60, "undone": False,
             "changed_at": now},
            key=f"{change_id}",          # the same (type, key) twice records one event
            user_id=user_id,
        )
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from facetoface.clock import utcnow
from facetoface.db.roles import USER_DB_ROLE, db_role
from facetoface.outbox.events import PAYLOAD_FIELDS, DeliveryStatus, EventType

__all__ = [
    "PAYLOAD_FIELDS",
    "DeliveryStatus",
    "EventType",
    "enqueue",
    "enqueue_params",
]

#: `(event_type, event_key)` is unique: recording the same event again changes nothing.
_INSERT = (
    "INSERT INTO public.webhook_events (id, event_type, event_key, user_id, data, status,"
    " attempts, occurred_at, next_attempt_at, created_at)"
    " VALUES ({id}, {event_type}, {event_key}, {user_id}, CAST({data} AS jsonb), {status}, 0,"
    " {now}, {now}, {now})"
    " ON CONFLICT (event_type, event_key) DO NOTHING"
)
_NAMES = ("id", "event_type", "event_key", "user_id", "data", "status", "now")
ENQUEUE_SQL = text(_INSERT.format(**{name: f":{name}" for name in _NAMES}))

#: The outbox belongs to the service; a transaction acting as the user (`authenticated`,
#: which may not touch it, and always carries the caller's claims) switches to the service
#: acting for that user for the insert, and back.
_SERVICE_ROLE = db_role("service", for_user=True)
_USER_ROLE = USER_DB_ROLE


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


def enqueue_params(
    event_type: EventType,
    data: Mapping[str, Any],
    *,
    key: str,
    user_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The parameters of one event's insert (checked: known type, only `PAYLOAD_FIELDS`)."""
    event_type = EventType(event_type)
    unknown = set(data) - PAYLOAD_FIELDS[event_type]
    if unknown:
        raise ValueError(
            f"{event_type.value} carries no {sorted(unknown)}: payloads hold ids, times and "
            "statuses only (outbox/events.py PAYLOAD_FIELDS)"
        )
    if not 1 <= len(key) <= 200:
        raise ValueError("an event key is 1 to 200 characters")
    return {
        "id": uuid.uuid4(),
        "event_type": event_type.value,
        "event_key": key,
        "user_id": user_id,
        "data": json.dumps(dict(data), default=_json_default, separators=(",", ":")),
        "status": DeliveryStatus.pending.value,
        "now": now or utcnow(),
    }


async def enqueue(
    session_or_connection: AsyncSession | AsyncConnection,
    event_type: EventType,
    data: Mapping[str, Any],
    *,
    key: str,
    user_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> bool:
    """Record one event in the caller's open transaction; True when it is new (False: this
    `(event_type, key)` was recorded before — nothing changed).

    Call it in the transaction that makes the change it reports, so both commit or neither.
    It works as the service (`role="service"`, with or without the user's identity: acting
    for a user it may record only that user's events, `user_id`) and as the user (it switches
    to the service's role for the insert and back: a user may never write the outbox).
    """
    params = enqueue_params(event_type, data, key=key, user_id=user_id, now=now)
    role = (await session_or_connection.execute(text("SELECT current_user"))).scalar_one()
    if role == _USER_ROLE:
        await session_or_connection.execute(
            text("SELECT set_config('role', :role, true)"), {"role": _SERVICE_ROLE}
        )
    try:
        result = await session_or_connection.execute(ENQUEUE_SQL, params)
    finally:
        if role == _USER_ROLE:
            await session_or_connection.execute(
                text("SELECT set_config('role', :role, true)"), {"role": _USER_ROLE}
            )
    return bool(getattr(result, "rowcount", 0))
