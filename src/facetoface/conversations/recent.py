"""Which conversations may still hear from Tavus, known in memory: so that posts anyone can
send (a callback with an unsigned token, the origin's unsigned webhook) cost no database work
when they name a conversation that is not ours.

A snapshot of the rows that are live or ended within `WINDOW` (Tavus's last events of a
conversation — the shutdown, the transcript — arrive minutes after its end): their row ids
and Tavus conversation ids. It is loaded on first use and reloaded on a miss, at most once
per `refresh_s`, however many misses arrive: a flood of made-up ids costs at most one query
per `refresh_s` per process, never one per post. A conversation of ours that is younger than
the snapshot is found by the next reload; one that is missed meanwhile (its post answered as
unknown) is recovered by the reconciler, which asks Tavus for what a session lacks.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import structlog
from sqlalchemy import or_, select

from facetoface.clock import utcnow
from facetoface.db import Database
from facetoface.models import MentorConversation

log = structlog.get_logger(__name__)

#: How long after its end a conversation may still post (its transcript comes last).
WINDOW = timedelta(hours=24)
#: Rows a snapshot holds at most (live sessions plus a day's ended ones, with room to spare).
MAX_ROWS = 200_000


@dataclass(frozen=True, slots=True)
class _Snapshot:
    row_ids: frozenset[uuid.UUID] = frozenset()
    by_tavus_id: dict[str, uuid.UUID] = field(default_factory=dict)
    loaded_at: float = -float("inf")


class RecentConversations:
    """The snapshot (see the module docstring); one per app, shared by its features."""

    def __init__(
        self,
        db: Database,
        *,
        refresh_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.refresh_s = refresh_s
        self._clock = clock
        self._snapshot = _Snapshot()
        self._loading = asyncio.Lock()
        #: Queries run so far (each is one round trip).
        self.loads = 0

    async def has_row(self, row_id: uuid.UUID) -> bool:
        """True when `row_id` is one of our conversations that may still hear from Tavus."""
        if row_id in self._snapshot.row_ids:
            return True
        await self._reload_if_stale()
        return row_id in self._snapshot.row_ids

    async def row_for_tavus_id(self, conversation_id: str) -> uuid.UUID | None:
        """Our row bound to Tavus conversation `conversation_id`, if it may still post."""
        found = self._snapshot.by_tavus_id.get(conversation_id)
        if found is not None:
            return found
        await self._reload_if_stale()
        return self._snapshot.by_tavus_id.get(conversation_id)

    async def _reload_if_stale(self) -> None:
        if self._clock() - self._snapshot.loaded_at < self.refresh_s:
            return
        async with self._loading:  # one query, however many misses wait for it
            if self._clock() - self._snapshot.loaded_at < self.refresh_s:
                return
            self._snapshot = await self._load()

    async def _load(self) -> _Snapshot:
        mc = MentorConversation
        statement = (
            select(mc.id, mc.tavus_conversation_id)
            .where(or_(mc.end_time.is_(None), mc.end_time > utcnow() - WINDOW))
            .limit(MAX_ROWS)
        )
        self.loads += 1
        async with self.db.transaction(role="service") as session:
            rows = (await session.execute(statement)).all()
        if len(rows) == MAX_ROWS:
            log.warning("recent_conversations.truncated", rows=MAX_ROWS)
        return _Snapshot(
            row_ids=frozenset(row_id for row_id, _ in rows),
            by_tavus_id={tavus_id: row_id for row_id, tavus_id in rows if tavus_id},
            loaded_at=self._clock(),
        )
