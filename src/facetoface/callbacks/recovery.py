"""Take what Tavus itself reports about a conversation and ingest it like its callbacks.

`GET /v2/conversations/{id}?verbose=true` lists the conversation's events in the callbacks'
own shape. Each one goes through `CallbackService.ingest_trusted`: the same inbox, the same
dedupe key and the same merges as an authenticated callback, so fetching twice (or fetching
what a callback already delivered) changes nothing. Used by the reconciler (lost callbacks)
and by the origin's unsigned webhook, whose body is only a hint to come and look.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from facetoface.callbacks.service import CallbackService
from facetoface.db import Database
from facetoface.tavus import ConversationDetails, TavusClient, TavusNotFound


@dataclass(frozen=True, slots=True)
class Recovered:
    """What Tavus reported, and the outcome of each of its events (`applied`, `no_effect`,
    `ignored` or `duplicate`) in the order Tavus listed them."""

    details: ConversationDetails
    outcomes: list[tuple[str, str]] = field(default_factory=list)

    @property
    def applied(self) -> list[str]:
        """Event types that changed the session."""
        return [event_type for event_type, outcome in self.outcomes if outcome == "applied"]


async def ingest_from_tavus(
    db: Database,
    callbacks: CallbackService,
    tavus: TavusClient,
    row_id: uuid.UUID,
    conversation_id: str,
) -> Recovered | None:
    """Fetch the conversation verbosely and ingest each event Tavus lists, one short service
    transaction per event. None when Tavus no longer knows the conversation; any other Tavus
    failure is raised (`TavusError`), with the events before it already stored."""
    try:
        details = await tavus.get_conversation(conversation_id, verbose=True)
    except TavusNotFound:
        return None
    outcomes: list[tuple[str, str]] = []
    for event in details.events:
        raw = {**event.model_dump(mode="json"), "conversation_id": conversation_id}
        async with db.transaction(role="service") as session:
            outcome = await callbacks.ingest_trusted(session, row_id, raw)
        outcomes.append((event.event_type or "", outcome))
    return Recovered(details, outcomes)
