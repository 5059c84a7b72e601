"""A start whose Tavus outcome is unknown, decided on its user's next start or read (issue: a
user must not be locked out until the reconciler's next pass, nor get a 409 for a session with
no room).

Which sessions are unknown to their user is this module's (`outcome_unknown`); the decision
itself is the one the reconciler makes too (conversations/unknown_starts.py): adopted (the
session is live with its room, or ended if Tavus ended it), or marked failed and the start goes
on. While it cannot be decided — Tavus cannot be asked, or its create may still be running —
the answer is `503 session_outcome_unknown` with `Retry-After`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from facetoface.config import Settings
from facetoface.conversations.repository import SessionRow
from facetoface.conversations.service import ConversationService
from facetoface.conversations.status import ConversationStatus
from facetoface.conversations.unknown_starts import (
    Adopted,
    Undecided,
    UnknownStart,
    UnknownStarts,
)
from facetoface.db import Identity
from facetoface.sessions.errors import SessionOutcomeUnknown
from facetoface.sessions.repository import SessionRepository
from facetoface.tavus import TavusError

#: When Tavus could not be asked: its circuit or its answers need this long to come back.
_TAVUS_FAILED_RETRY_AFTER = 30


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
        self.starts = UnknownStarts(conversations, list_pages=settings.reconcile_list_pages)

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
        """Decide a start whose outcome is unknown (`UnknownStarts.decide`) and return the
        session as it is now. Raises `SessionOutcomeUnknown` (a 503 with `Retry-After`) while
        that cannot be decided."""
        start = UnknownStart(
            row_id=row.mentor_conversation_id,
            conversation_name=row.conversation_name,
            tavus_conversation_id=row.tavus_conversation_id,
            created_at=row.created_at,
            failure_code=row.failure_code,
        )
        try:
            decision = await self.starts.decide(start, identity=identity)
        except TavusError as exc:
            raise _still_unknown(row, retry_after=_TAVUS_FAILED_RETRY_AFTER) from exc
        if isinstance(decision, Undecided):
            raise _still_unknown(row, retry_after=decision.retry_after)
        if isinstance(decision, Adopted) and decision.events_applied:
            # Tavus's events changed it after the adoption (ended it, say): read it again.
            return await self.repository.get(identity, row.id) or row
        return decision.applied.session or row


def _still_unknown(row: SessionRow, *, retry_after: int) -> SessionOutcomeUnknown:
    return SessionOutcomeUnknown(
        "The video service has not confirmed whether this session's call exists; it is being "
        "checked. Try again shortly.",
        retry_after_seconds=max(1, retry_after),
        extra={"session_id": str(row.id)},
    )
