"""Operations on one conversation that several features share.

- `ingest`: store one Tavus event in the inbox and apply its effect — for an authenticated
  callback (with its token), an event Tavus reported when asked (the reconciler's verbose
  fetch; the origin's unsigned webhook, which only says *which* conversation to ask about).
- `ingest_from_tavus`: ask Tavus what it knows of a conversation (the verbose fetch) and
  ingest every event it lists, each isolated (one malformed entry skips, never stops, the
  rest). The reconciler uses it for lost callbacks; the origin's unsigned webhook, whose
  body only says *which* conversation to ask about, too.
- `end_at_tavus`: end a conversation at Tavus (the one place that does it);
  `discard_at_tavus`: end it and delete it there (its session's rows are gone);
  `find_at_tavus`: find a conversation of ours by its name (an unknown create outcome,
  decided in `unknown_starts`).
- The transitions of an unresolved start: `adopt` (Tavus has it), `fail` (it never did),
  `mark_unresolved` (it may have); and `close` (our side ended it).

Each is one `ConversationRepository.apply`: one round trip on PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from facetoface.clock import utcnow
from facetoface.conversations.events import (
    KNOWN,
    MalformedCallback,
    ParsedEvent,
    dedupe_key,
    event_delta,
    parse_event,
)
from facetoface.conversations.repository import (
    Applied,
    ConversationRepository,
    Extra,
    InboxEvent,
    SessionRow,
)
from facetoface.conversations.state import Delta
from facetoface.conversations.status import CallbackOutcome, FailureCode
from facetoface.db import Database, Identity
from facetoface.observability import metrics
from facetoface.tavus import (
    Conversation,
    ConversationDetails,
    TavusClient,
    TavusError,
    TavusNotFound,
)

log = structlog.get_logger(__name__)

#: Conversations per page when looking one up by name (Tavus's largest page).
_LIST_PAGE = 100


@dataclass(frozen=True, slots=True)
class Recovered:
    """What Tavus reported about a conversation, and what ingesting its events did (counts
    by outcome, `malformed`, and `recovered:<event type>` for each event that applied)."""

    details: ConversationDetails
    counts: Counter[str]

    @property
    def recovered(self) -> int:
        """Events that were missing here and applied now."""
        return sum(n for action, n in self.counts.items() if action.startswith("recovered:"))


@dataclass(frozen=True, slots=True)
class Ingested:
    """What ingesting one event did."""

    #: False: no such conversation, or the token / Tavus id did not match (a forgery looks
    #: the same as an unknown conversation).
    accepted: bool
    outcome: CallbackOutcome | None
    #: The conversation had another Tavus id bound (logged apart from unknown ones).
    misbound: bool = False
    #: What to log about it (no personal data): the caller logs it — a callback on its
    #: request's one line, an event fetched from Tavus on a line of its own.
    facts: dict[str, object] = field(default_factory=dict)


class ConversationService:
    """Shared conversation operations; one instance per app."""

    def __init__(self, db: Database, tavus: TavusClient) -> None:
        self.db = db
        self.tavus = tavus
        self.repository = ConversationRepository(db)

    async def end_at_tavus(self, conversation_id: str) -> bool:
        """End a conversation at Tavus (the client retries); True when it is — or already was
        — ended there, False when Tavus could not be told (the caller keeps a trace)."""
        try:
            await self.tavus.end_conversation(conversation_id)
        except TavusNotFound:
            return True  # Tavus no longer knows it: nothing is running
        except TavusError as exc:
            log.warning(
                "conversation.tavus_end_failed",
                conversation_id=conversation_id,
                tavus_error=type(exc).__name__,
                tavus_status=exc.status_code,
            )
            return False
        return True

    async def discard_at_tavus(self, conversation_id: str) -> bool:
        """End a conversation at Tavus and delete it there with its assets: its session was
        deleted here (by its user, or with all their data) while Tavus was creating it, so
        nothing of ours refers to it any more. True when it is gone; False when Tavus could
        not be told (the reconciler ends a running conversation named like ours that has no
        row here)."""
        ended = await self.end_at_tavus(conversation_id)
        try:
            await self.tavus.delete_conversation(conversation_id, hard=True)
        except TavusNotFound:
            return True
        except TavusError as exc:
            log.warning(
                "conversation.tavus_delete_failed",
                conversation_id=conversation_id,
                tavus_error=type(exc).__name__,
                tavus_status=exc.status_code,
            )
            return False
        return ended

    async def find_at_tavus(self, name: str, *, pages: int) -> Conversation | None:
        """The conversation Tavus holds under `name` (this installation's names are unique:
        conversations/names.py), looked for among the account's newest `pages` pages; None
        when Tavus has none. Tavus's failures are raised (the caller cannot decide then)."""
        for page in range(1, pages + 1):
            result = await self.tavus.list_conversations(limit=_LIST_PAGE, page=page)
            for conversation in result.data:
                if conversation.conversation_name == name:
                    return conversation
            if len(result.data) < _LIST_PAGE:
                break
        return None

    async def ingest(
        self,
        row_id: uuid.UUID,
        event: ParsedEvent,
        *,
        token_hash: bytes | None = None,
        raw_body: bytes | None = None,
        now: datetime | None = None,
    ) -> Ingested:
        """Store `event` once and apply it; `token_hash` authenticates a callback."""
        now = now or utcnow()
        envelope = event.envelope
        inbox = InboxEvent(
            event=event,
            dedupe_key=dedupe_key(row_id, event),
            known=envelope.event_type in KNOWN,
            received_at=now,
            raw_body=raw_body,
        )
        applied = await self.repository.apply(
            row_id,
            event_delta(envelope, now),
            token_hash=token_hash,
            inbox=inbox,
            now=now,
        )
        if not applied.authorized:
            # Right token, another Tavus id: someone replays a callback across conversations.
            return Ingested(False, None, misbound=applied.found and applied.token_ok)
        outcome = applied.outcome if applied.stored else CallbackOutcome.duplicate
        assert outcome is not None
        metrics.record_callback(envelope.event_type, outcome.value)
        if applied.ended_now:
            metrics.record_session_ended(applied.shutdown_reason)
        facts: dict[str, object] = {
            "mentor_conversation_id": str(row_id),
            "event_type": envelope.event_type[:100],
            "callback_outcome": outcome.value,
            "normalized": event.normalized or None,
        }
        return Ingested(True, outcome, facts=facts)

    async def ingest_from_tavus(
        self, row_id: uuid.UUID, conversation_id: str, *, tavus: TavusClient | None = None
    ) -> Recovered | None:
        """Fetch the conversation from Tavus (verbose) and ingest every event it lists through
        the inbox: what was already stored is a duplicate, what was lost is recovered. None
        when Tavus no longer knows the conversation; other Tavus failures are raised. `tavus`:
        a client of the caller's own (a lane apart from the users' calls), else the shared."""
        try:
            details = await (tavus or self.tavus).get_conversation(conversation_id, verbose=True)
        except TavusNotFound:
            return None
        return await self.ingest_details(row_id, details)

    async def ingest_details(self, row_id: uuid.UUID, details: ConversationDetails) -> Recovered:
        """Ingest every event a verbose fetch of the conversation listed (`ingest_reported`)."""
        events = (event.model_dump(mode="json") for event in details.events)
        counts = await self.ingest_reported(row_id, details.conversation_id, events)
        return Recovered(details, counts)

    async def ingest_reported(
        self, row_id: uuid.UUID, conversation_id: str, events: Iterable[Any]
    ) -> Counter[str]:
        """Ingest the events Tavus reported for a conversation (its verbose fetch), each on
        its own: a malformed entry is counted (`malformed`) and skipped. Outcomes by name."""
        counts: Counter[str] = Counter()
        for raw in events:
            if not isinstance(raw, dict):
                counts["malformed"] += 1
                continue
            try:
                event = parse_event({**raw, "conversation_id": conversation_id})
            except MalformedCallback:
                counts["malformed"] += 1
                log.warning("conversation.reported_event_malformed", row=str(row_id))
                continue
            result = await self.ingest(row_id, event)
            if result.accepted:
                log.info("callback.ingested", source="tavus_fetch", **result.facts)
            counts[result.outcome.value if result.outcome else "refused"] += 1
            if result.outcome is CallbackOutcome.applied:
                counts[f"recovered:{event.envelope.event_type[:60]}"] += 1
        return counts

    # --- transitions -------------------------------------------------------------------
    async def _transition(
        self,
        row_id: uuid.UUID,
        delta: Delta,
        identity: Identity | None,
        extra: Extra | None,
        now: datetime | None = None,
    ) -> Applied:
        """Apply `delta` for `identity` (confined to their session) or for nobody."""
        return await self.repository.apply(
            row_id,
            delta,
            identity=identity,
            owner=identity.user_id if identity is not None else None,
            extra=extra,
            now=now or utcnow(),
        )

    async def adopt(
        self,
        row_id: uuid.UUID,
        *,
        conversation_id: str,
        conversation_url: str | None,
        start_time: datetime,
        identity: Identity | None = None,
        extra: Extra | None = None,
    ) -> Applied:
        """Tavus has the conversation: record it; an unresolved start becomes active."""
        delta = Delta(
            conversation_id=conversation_id,
            adopt=True,
            start_time=start_time,
            conversation_url=conversation_url,
        )
        return await self._transition(row_id, delta, identity, extra)

    async def fail(
        self,
        row_id: uuid.UUID,
        code: FailureCode,
        *,
        identity: Identity | None = None,
        extra: Extra | None = None,
    ) -> Applied:
        """Tavus never created it: an unresolved start becomes failed (nothing else does)."""
        delta = Delta(fail=True, failure_code=code.value)
        return await self._transition(row_id, delta, identity, extra)

    async def mark_unresolved(
        self,
        row_id: uuid.UUID,
        code: FailureCode,
        *,
        identity: Identity | None = None,
        extra: Extra | None = None,
    ) -> Applied:
        """Tavus may have created it: a `starting` start becomes indeterminate."""
        delta = Delta(unresolved=True, failure_code=code.value)
        return await self._transition(row_id, delta, identity, extra)

    async def close(
        self,
        row_id: uuid.UUID,
        *,
        failure_code: FailureCode | None = None,
        identity: Identity | None = None,
        now: datetime | None = None,
    ) -> SessionRow | None:
        """Our side ended the conversation (an end call, the reconciler): its records close;
        Tavus's own shutdown time, if it comes, still wins for the end time."""
        now = now or utcnow()
        delta = Delta(
            closed_at=now, failure_code=failure_code.value if failure_code is not None else None
        )
        applied = await self._transition(row_id, delta, identity, None, now)
        if applied.ended_now:
            metrics.record_session_ended(applied.shutdown_reason or "user_end")
        return applied.session
