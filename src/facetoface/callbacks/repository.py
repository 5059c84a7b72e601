"""SQL of the callback inbox."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert

from facetoface.models import TavusCallbackEvent


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    event_type: str
    event_timestamp: datetime | None
    received_at: datetime
    outcome: str


class CallbackRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def insert_event(self, values: dict[str, Any]) -> Insert:
        """`INSERT … ON CONFLICT (dedupe_key) DO NOTHING RETURNING id` for this dialect."""
        dialect = self.session.get_bind().dialect.name
        module: Any = postgresql if dialect == "postgresql" else sqlite
        statement: Insert = (
            module.insert(TavusCallbackEvent)
            .values(values)
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(TavusCallbackEvent.id)
        )
        return statement

    async def store(self, values: dict[str, Any]) -> bool:
        """Store an event that changes nothing; False if it was already stored."""
        return (await self.session.execute(self.insert_event(values))).first() is not None

    async def timeline(self, mentor_conversation_id: uuid.UUID) -> list[TimelineEntry]:
        """A conversation's events in the order they happened (then arrived)."""
        e = TavusCallbackEvent
        rows = await self.session.execute(
            select(e.event_type, e.event_timestamp, e.received_at, e.outcome)
            .where(e.mentor_conversation_id == mentor_conversation_id)
            .order_by(e.received_at, e.id)
        )
        entries = [TimelineEntry(**row._mapping) for row in rows]
        return sorted(entries, key=lambda t: (t.event_timestamp or t.received_at, t.received_at))
