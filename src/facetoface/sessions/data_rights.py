"""Data rights: deleting one of a user's sessions, or everything stored about a user — at
Tavus first, so nothing of ours is deleted while Tavus still holds the conversation."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import structlog

from facetoface.config import Settings
from facetoface.conversations.names import memory_tag
from facetoface.conversations.status import LIVE_STATUSES
from facetoface.db import Database, Identity
from facetoface.sessions.data_rights_repository import DataRightsRepository
from facetoface.sessions.errors import TavusUnavailableError
from facetoface.sessions.service import SessionService
from facetoface.tavus import TavusClient, TavusError, TavusNotFound

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class PurgeReport:
    """What erasing a user deleted at Tavus (everything here goes too)."""

    conversations: int
    memory_stores: int


class DataRights:
    """Deletes sessions and users, here and at Tavus."""

    def __init__(
        self, settings: Settings, db: Database, tavus: TavusClient, sessions: SessionService
    ) -> None:
        self.settings = settings
        self.db = db
        self.tavus = tavus
        self.sessions = sessions

    async def delete(self, identity: Identity, session_id: uuid.UUID) -> None:
        """Delete the caller's session: end it if live, hard-delete the conversation at
        Tavus (its recording and transcript there), then our rows, events included.

        If Tavus cannot delete it now, nothing of ours is deleted (503): the request is
        safe to repeat, and the conversation stays findable until Tavus has let it go.
        """
        row = await self.sessions.get(identity, session_id)
        if row.conversation_status in LIVE_STATUSES:
            # Claimed as an end claims it — a start still waiting for Tavus included: that
            # start then ends what Tavus made (or, if our rows are gone by then, ends and
            # deletes it there, answering `410 session_deleted`).
            row = await self.sessions.end(identity, session_id)
        deleted: str | None = None
        bound = row.tavus_conversation_id
        while True:
            if bound is not None and bound != deleted:
                await self._delete_at_tavus(bound)
                deleted = bound
            async with self.db.transaction(identity, role="service") as session:
                repository = DataRightsRepository(session)
                # A start in flight may have bound its conversation since: delete that at
                # Tavus first (the id is bound once, so this repeats at most once).
                bound = await repository.lock_session(identity.user_id, session_id)
                if bound is None or bound == deleted:
                    await repository.delete_session(identity.user_id, session_id)
                    break
        log.info("session.deleted", session_id=str(session_id))

    async def purge_user(self, user_id: uuid.UUID) -> PurgeReport:
        """Delete everything stored about a user, at Tavus first: their conversations and the
        memory stores Tavus keeps under their tag (whatever `TAVUS_MEMORY` is now: an earlier
        setting may have made them). Raises TavusUnavailableError (nothing deleted here) if
        Tavus fails; repeating it is safe.

        In order: (1) the user is marked, so no session starts from now on (a start answers
        `410 erasure_in_progress`; one already past its first round trip has its rows
        committed); (2) every live session is ended as an end ends it — a start still waiting
        for Tavus is claimed, and ends what Tavus made when it answers — and a start whose
        outcome is unknown is looked up at Tavus by its name; (3) every conversation and
        memory store is deleted at Tavus; (4) under the rows' locks, a conversation bound
        since (a start that was in flight) is deleted at Tavus too, then the rows and the mark
        go. A start answering after that finds no rows: it ends and deletes its conversation
        at Tavus itself (`410 session_deleted`).
        """
        identity = Identity(user_id)
        async with self.db.transaction(identity, role="service") as session:
            await DataRightsRepository(session).mark_erasure(user_id)
            live = await DataRightsRepository(session).live_sessions(user_id)
        deleted: set[str] = set()
        for session_id, name, bound in live:
            await self.sessions.end(identity, session_id)
            if bound is None:
                deleted |= await self._delete_named(name)
        stores = await self._memory_stores(memory_tag(self.settings.deployment_name, user_id))
        for store_id in stores:
            await self._delete_memory_store(store_id)
        while True:
            async with self.db.transaction(identity, role="service") as session:
                pending = await DataRightsRepository(session).conversation_ids(user_id)
            for conversation_id in sorted(pending - deleted):
                await self._delete_at_tavus(conversation_id)
                deleted.add(conversation_id)
            async with self.db.transaction(identity, role="service") as session:
                repository = DataRightsRepository(session)
                if await repository.conversation_ids(user_id, lock=True) <= deleted:
                    await repository.delete_user(user_id)
                    break
        report = PurgeReport(conversations=len(deleted), memory_stores=len(stores))
        log.info("user.purged", conversations=report.conversations, memory_stores=len(stores))
        return report

    async def _delete_named(self, name: str) -> set[str]:
        """Delete at Tavus the conversation of ours named `name`, if Tavus has one (a start
        whose outcome is unknown); the ids deleted."""
        try:
            found = await self.sessions.conversations.find_at_tavus(
                name, pages=self.settings.reconcile_list_pages
            )
        except TavusError as exc:
            raise TavusUnavailableError(
                "The video service could not be asked about a session now; nothing was "
                "deleted, try again shortly."
            ) from exc
        if found is None:
            return set()
        await self._delete_at_tavus(found.conversation_id)
        return {found.conversation_id}

    async def _memory_stores(self, tag: str) -> list[str]:
        """The ids of the Tavus memory stores kept under `tag` (legacy tags have no delete)."""
        try:
            page = await self.tavus.list_memory_stores(participant_tag=tag)
        except TavusNotFound:
            return []  # an account without the memory-stores API holds no store
        except TavusError as exc:
            raise TavusUnavailableError(
                "The video service could not list the user's memory now; nothing was "
                "deleted, try again shortly."
            ) from exc
        # Tavus filters by tag; a store shown under another tag is never ours to delete.
        return [s.memory_store_id for s in page.data if s.participant_tag in (None, tag)]

    async def _delete_memory_store(self, memory_store_id: str) -> None:
        await _gone_at_tavus(self.tavus.delete_memory_store(memory_store_id), "the user's memory")

    async def _delete_at_tavus(self, conversation_id: str) -> None:
        await _gone_at_tavus(
            self.tavus.delete_conversation(conversation_id, hard=True), "the conversation"
        )


async def _gone_at_tavus(deletion: Awaitable[Any], what: str) -> None:
    """Await a delete at Tavus: done when it is gone (already gone counts); otherwise
    TavusUnavailableError, before anything of ours is deleted."""
    try:
        await deletion
    except TavusNotFound:
        return
    except TavusError as exc:
        raise TavusUnavailableError(
            f"The video service could not delete {what} now; nothing was deleted here, try "
            "again shortly."
        ) from exc
