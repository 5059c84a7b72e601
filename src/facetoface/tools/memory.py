"""The user's memory at Tavus, read and forgotten through the service (never browser → Tavus).

Tavus keeps one memory store per (PAL, participant tag); the tag is the user's
(`conversations.names.memory_tag`), set only by the service from the verified identity. The
mentor pins facts there (`remember`); the user reads the pinned facts and what Tavus learned
(a profile and a timeline), forgets one pinned fact, or deletes every store.
"""

from __future__ import annotations

import uuid
from typing import Any

import structlog

from facetoface.config import Settings
from facetoface.conversations.names import memory_tag
from facetoface.db import Database, Identity
from facetoface.tavus import TavusClient, TavusError, TavusNotFound
from facetoface.tavus.registry import MemoryStoreDetails
from facetoface.tools.errors import MemoryUnavailable, PinnedMemoryNotFound
from facetoface.tools.repository import ActionsRepository
from facetoface.tools.schemas import MemoryForgotten, MemoryOut, PinnedMemoryOut

log = structlog.get_logger(__name__)

_UNAVAILABLE = "The video service, which keeps the memory, is not answering; try again shortly."


class MemoryService:
    """What the mentor remembers of a user, at Tavus."""

    def __init__(self, settings: Settings, db: Database, tavus: TavusClient) -> None:
        self.settings = settings
        self.db = db
        self.tavus = tavus

    @property
    def deployment_remembers(self) -> bool:
        """Whether conversations carry the user's memory store (`TAVUS_MEMORY=participant`):
        only Memory Stores can be pinned to, read and forgotten."""
        return self.settings.tavus_memory == "participant"

    def _tag(self, user_id: uuid.UUID) -> str:
        return memory_tag(self.settings.deployment_name, user_id)

    async def _store_ids(self, user_id: uuid.UUID, pal_id: str | None = None) -> list[str]:
        tag = self._tag(user_id)
        try:
            page = await self.tavus.list_memory_stores(participant_tag=tag, pal_id=pal_id)
        except TavusNotFound:
            return []  # an account without the memory-stores API holds no store
        except TavusError as exc:
            raise MemoryUnavailable(_UNAVAILABLE) from exc
        # Tavus filters by tag; a store shown under another tag is never the user's.
        return [s.memory_store_id for s in page.data if s.participant_tag in (None, tag)]

    async def pin(self, user_id: uuid.UUID, pal_id: str, fact: str) -> bool:
        """Pin `fact` to the user's store with `pal_id` (made if missing); False when Tavus
        could not be told (nothing was pinned, as far as we know)."""
        try:
            stores = await self._store_ids(user_id, pal_id)
            if stores:
                await self.tavus.pin_memory(stores[0], fact)
            else:
                await self.tavus.create_memory_store(pal_id, self._tag(user_id), [fact])
        except (TavusError, MemoryUnavailable) as exc:
            log.warning("memory.pin_failed", error=type(exc).__name__)
            return False
        log.info("memory.pinned")
        return True

    async def _stores(self, user_id: uuid.UUID) -> list[MemoryStoreDetails]:
        stores = []
        for store_id in await self._store_ids(user_id):
            try:
                stores.append(await self.tavus.get_memory_store(store_id))
            except TavusNotFound:
                continue  # deleted meanwhile
            except TavusError as exc:
                raise MemoryUnavailable(_UNAVAILABLE) from exc
        return stores

    async def read(self, identity: Identity) -> MemoryOut:
        """The caller's pinned facts and learned memory."""
        async with self.db.transaction(identity, role="user") as s:
            preference = await ActionsRepository(s).mentor_memory(identity.user_id)
        pinned: list[PinnedMemoryOut] = []
        profile: dict[str, Any] | None = None
        timeline: list[Any] | None = None
        for store in await self._stores(identity.user_id):
            pinned += [
                PinnedMemoryOut(id=p.memory_id, text=p.memory, created_at=p.created_at)
                for p in store.pinned_memories
                if p.memory_id
            ]
            try:
                learned_profile = await self.tavus.get_learned_memory(
                    store.memory_store_id, "profile"
                )
                learned_timeline = await self.tavus.get_learned_memory(
                    store.memory_store_id, "timeline"
                )
            except TavusNotFound:
                continue
            except TavusError as exc:
                raise MemoryUnavailable(_UNAVAILABLE) from exc
            if learned_profile.profile:
                profile = {**(profile or {}), **learned_profile.profile}
            entries = _timeline_entries(learned_timeline.timeline)
            if entries:
                timeline = [*(timeline or []), *entries]
        return MemoryOut(
            enabled=self.deployment_remembers and preference,
            pinned=pinned,
            profile=profile,
            timeline={"recent_conversations": timeline} if timeline is not None else None,
        )

    async def forget_pinned(self, identity: Identity, memory_id: str) -> None:
        """Forget one of the caller's pinned facts (404 if none of their stores has it)."""
        for store in await self._stores(identity.user_id):
            if any(p.memory_id == memory_id for p in store.pinned_memories):
                try:
                    await self.tavus.delete_pinned_memory(store.memory_store_id, memory_id)
                except TavusNotFound:
                    pass  # forgotten already
                except TavusError as exc:
                    raise MemoryUnavailable(_UNAVAILABLE) from exc
                log.info("memory.pinned_forgotten")
                return
        raise PinnedMemoryNotFound("None of your memories has this id.")

    async def forget_all(self, identity: Identity) -> MemoryForgotten:
        """Delete every memory store Tavus keeps for the caller."""
        deleted = 0
        for store_id in await self._store_ids(identity.user_id):
            try:
                await self.tavus.delete_memory_store(store_id)
            except TavusNotFound:
                continue
            except TavusError as exc:
                raise MemoryUnavailable(_UNAVAILABLE) from exc
            deleted += 1
        log.info("memory.forgotten", memory_stores=deleted)
        return MemoryForgotten(memory_stores_deleted=deleted)


def _timeline_entries(timeline: Any) -> list[Any]:
    """The entries of a learned timeline: `{recent_conversations: [...]}` or a bare list."""
    if isinstance(timeline, dict):
        entries = timeline.get("recent_conversations")
        return list(entries) if isinstance(entries, list) else []
    return list(timeline) if isinstance(timeline, list) else []
