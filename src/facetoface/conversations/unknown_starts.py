"""The one decision for a start whose Tavus create was sent but never answered.

A start is unknown when its create may or may not have made a conversation at Tavus: the
create failed without an answer (`indeterminate`), or its process never recorded the answer
(`starting` past a start's longest duration); for its user, also when a callback proved the
conversation exists without giving us its room (`active` without a join URL). Two callers
decide such a start: the user's next start or read (sessions, which answers
`503 session_outcome_unknown` while it is undecided) and the reconciler's pass (which leaves it
for the next pass). Both use this:

1. **Lookup**: by the Tavus id when one is bound (a callback told us it), else by the name
   every conversation of ours carries (conversations/names.py) — one verbose fetch gives the
   conversation and every event Tavus holds for it. Tavus's failures are raised: nothing is
   decided or written then.
2. **Adopt**: found, the session gets Tavus's conversation and room, and Tavus's events go
   through the callback inbox (same dedupe, same merges): a conversation Tavus already ended
   closes ours with its shutdown.
3. **Fail**: not found once the create can no longer be running at Tavus, the start is marked
   failed (`not_created_at_tavus`). Until then "not found" is no answer: **undecided**, with
   the seconds until it will be.

When "not found" means "never created" (`settled_at`): at once when Tavus answered the create
(a 5xx: it finished with the request). Otherwise the create may have reached Tavus as late as
the client's longest call after the rows were written (the last retry inside the budget, a
lane, its deadline: `TavusClient.longest_call_seconds`), and Tavus may still finish a create it
received at our deadline: one more deadline (`TAVUS_TOTAL_TIMEOUT_SECONDS`) is allowed for
that. About a minute with the default settings. Any earlier and a create still running would
be marked failed and then billed as an orphan; any later only keeps the user waiting.
"""

from __future__ import annotations

import math
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

from facetoface.clock import utcnow
from facetoface.conversations.repository import Applied
from facetoface.conversations.service import ConversationService
from facetoface.conversations.status import FailureCode
from facetoface.db import Identity
from facetoface.tavus import Conversation, ConversationDetails, TavusNotFound

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class UnknownStart:
    """What the decision needs to know of a start whose outcome is unknown."""

    #: The `mentor_conversations` id.
    row_id: uuid.UUID
    conversation_name: str
    tavus_conversation_id: str | None
    #: When the start wrote its rows (its create was sent after that).
    created_at: datetime
    failure_code: str | None


@dataclass(frozen=True, slots=True)
class Adopted:
    """Tavus has the conversation: the session is live with its room, or ended by its
    events. `counts`: what ingesting Tavus's events did (`Recovered.counts`)."""

    applied: Applied
    counts: Counter[str] = field(default_factory=Counter)

    @property
    def events_applied(self) -> bool:
        """Some event Tavus reported was new here and changed the session."""
        return any(action.startswith("recovered:") for action in self.counts)


@dataclass(frozen=True, slots=True)
class Failed:
    """Tavus never created it: the start is marked failed."""

    applied: Applied


@dataclass(frozen=True, slots=True)
class Undecided:
    """Tavus has none yet, and its create may still be running: ask again in `retry_after`
    seconds (at least 1)."""

    retry_after: int


Decision = Adopted | Failed | Undecided


class UnknownStarts:
    """Decides unknown starts (see the module docstring); one per caller, stateless."""

    def __init__(self, conversations: ConversationService, *, list_pages: int) -> None:
        self.conversations = conversations
        #: Pages (of 100) of the account's newest conversations searched for a name.
        self.list_pages = list_pages

    def settled_at(self, start: UnknownStart) -> datetime:
        """When Tavus having no conversation for `start` means it never will."""
        if start.failure_code == FailureCode.tavus_server_error:
            return start.created_at  # Tavus answered the create: it is done with it
        tavus = self.conversations.tavus
        after = tavus.longest_call_seconds + tavus.total_timeout_seconds
        return start.created_at + timedelta(seconds=after)

    async def decide(
        self,
        start: UnknownStart,
        *,
        identity: Identity | None = None,
        listing: Mapping[str, Conversation] | None = None,
    ) -> Decision:
        """Adopt `start`'s conversation, mark it failed, or say when to ask again.

        `identity`: the user deciding their own session (their writes are confined to it);
        None for the service. `listing`: this installation's conversations by name, already
        listed (a reconciler pass lists once for all its rows); else Tavus is asked. Tavus's
        failures are raised before anything is written."""
        found = await self._lookup(start, listing)
        if found is None:
            wait = (self.settled_at(start) - utcnow()).total_seconds()
            if wait > 0:
                return Undecided(retry_after=max(1, math.ceil(wait)))
            applied = await self.conversations.fail(
                start.row_id, FailureCode.not_created_at_tavus, identity=identity
            )
            log.info("conversation.start_not_created", mentor_conversation_id=str(start.row_id))
            return Failed(applied)
        applied = await self.conversations.adopt(
            start.row_id,
            conversation_id=found.conversation_id,
            conversation_url=found.conversation_url,
            start_time=found.created_at or utcnow(),
            identity=identity,
        )
        log.info(
            "conversation.start_adopted",
            mentor_conversation_id=str(start.row_id),
            tavus_status=found.status,
        )
        counts: Counter[str] = Counter()
        if isinstance(found, ConversationDetails):
            # What Tavus already knows (the shutdown, a transcript) goes through the inbox.
            counts = (await self.conversations.ingest_details(start.row_id, found)).counts
        return Adopted(applied, counts)

    async def _lookup(
        self, start: UnknownStart, listing: Mapping[str, Conversation] | None
    ) -> Conversation | None:
        """`start`'s conversation at Tavus with its events (verbose), else None. Found in a
        listing but gone by the verbose fetch: the listing's view, without events."""
        conversation_id = start.tavus_conversation_id
        listed: Conversation | None = None
        if conversation_id is None:
            if listing is not None:
                listed = listing.get(start.conversation_name)
            else:
                listed = await self.conversations.find_at_tavus(
                    start.conversation_name, pages=self.list_pages
                )
            if listed is None:
                return None
            conversation_id = listed.conversation_id
        try:
            return await self.conversations.tavus.get_conversation(conversation_id, verbose=True)
        except TavusNotFound:
            return listed
