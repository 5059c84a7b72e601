"""A start whose Tavus outcome is unknown, decided by asking Tavus (issue: a user must not be
locked out until the reconciler's next pass, nor get a 409 for a session with no room).

The create was sent but not answered (`indeterminate`), or its process never recorded the
answer (`starting` past a start's longest duration). Tavus names every conversation of ours
(conversations/names.py), so the user's next start or read asks Tavus for it by name: found,
it is adopted (the session is live with its room, or ended if Tavus ended it); not found once
Tavus can no longer make it, it is marked failed and the start goes on. While that cannot be
decided — Tavus cannot be asked, or its create may still be running — the answer is
`503 session_outcome_unknown` with `Retry-After`.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import structlog

from facetoface.clock import utcnow
from facetoface.config import Settings
from facetoface.conversations.repository import SessionRow
from facetoface.conversations.service import ConversationService
from facetoface.conversations.status import ConversationStatus, FailureCode
from facetoface.db import Identity
from facetoface.sessions.errors import SessionOutcomeUnknown
from facetoface.sessions.repository import SessionRepository
from facetoface.tavus import TavusError, TavusStatus

log = structlog.get_logger(__name__)


class UnknownOutcomes:
    """Decides starts whose outcome is unknown; one per `SessionService`."""

    def __init__(
        self,
        settings: Settings,
        repository: SessionRepository,
        conversations: ConversationService,
    ) -> None:
        self.settings = settings
        self.repository = repository
        self.conversations = conversations

    def outcome_unknown(self, row: SessionRow, now: datetime) -> bool:
        """Whether `row`'s start may or may not have made a conversation at Tavus: its create
        failed without an answer (`indeterminate`), or its process never recorded an answer
        (`starting` past a start's longest duration) — or Tavus's callback proved it exists
        but carried no room to join (`active` without a join URL)."""
        if row.conversation_status == ConversationStatus.indeterminate:
            return True
        if row.conversation_status == ConversationStatus.active and not row.conversation_url:
            return True
        grace = timedelta(seconds=self.settings.reconcile_starting_grace_seconds)
        return row.conversation_status == ConversationStatus.starting and (
            now - row.created_at >= grace
        )

    async def resolve(self, identity: Identity, row: SessionRow) -> SessionRow:
        """Decide a start whose outcome is unknown by asking Tavus for its conversation by
        name: adopted (the session is live, with its room — or ended, if Tavus ended it), or
        marked failed when Tavus has none and can no longer make it. Raises
        `SessionOutcomeUnknown` (a 503 with `Retry-After`) while that cannot be decided."""
        row_id = row.mentor_conversation_id
        try:
            found = await self.conversations.find_at_tavus(
                row.conversation_name, pages=self.settings.reconcile_list_pages
            )
        except TavusError as exc:
            raise _still_unknown(row, retry_after=30) from exc
        if found is not None:
            applied = await self.conversations.adopt(
                row_id,
                conversation_id=found.conversation_id,
                conversation_url=found.conversation_url,
                start_time=found.created_at or utcnow(),
                identity=identity,
            )
            log.info("session.outcome_adopted", mentor_conversation_id=str(row_id))
            if found.status == TavusStatus.ended:
                # Tavus already ended it: its events (the shutdown) close ours.
                try:
                    await self.conversations.ingest_from_tavus(row_id, found.conversation_id)
                except TavusError as exc:
                    raise _still_unknown(row, retry_after=30) from exc
                current = await self.repository.get(identity, row.id)
                return current or row
            return applied.session or row
        wait = self._undecidable_for(row)
        if wait > 0:
            # The create may still be running at Tavus: "none" is not an answer yet.
            raise _still_unknown(row, retry_after=wait)
        applied = await self.conversations.fail(
            row_id, FailureCode.not_created_at_tavus, identity=identity
        )
        log.info("session.outcome_not_created", mentor_conversation_id=str(row_id))
        return applied.session or row

    def _undecidable_for(self, row: SessionRow) -> int:
        """Seconds until Tavus having no conversation of `row`'s name means it never will:
        at once when Tavus answered the create (a 5xx); else once a create sent with the row
        is past any time Tavus could still be working on it (twice the client's total
        timeout)."""
        if row.failure_code == FailureCode.tavus_server_error:
            return 0
        settled = row.created_at + timedelta(seconds=2 * self.settings.tavus_total_timeout_seconds)
        return max(0, math.ceil((settled - utcnow()).total_seconds()))


def _still_unknown(row: SessionRow, *, retry_after: int) -> SessionOutcomeUnknown:
    return SessionOutcomeUnknown(
        "The video service has not confirmed whether this session's call exists; it is being "
        "checked. Try again shortly.",
        retry_after_seconds=max(1, retry_after),
        extra={"session_id": str(row.id)},
    )
