"""The origin's three functions on facetoface's engine: no second start or end.

- `start-tavus-session` is `SessionService.start` (same idempotency, one live session, rate
  limit and failure modes as `POST /v1/sessions`), answered in the origin's shape.
- `end-tavus-session` finds the caller's session by whichever ids the app sent, then is
  `SessionService.end` (idempotent; ids naming different sessions, or someone else's, are a
  404 before Tavus is called).
- `tavus-webhook` is unsigned, so its body only says which conversation to look at: for one of
  our sessions, what Tavus itself reports is fetched and ingested like a callback; nothing the
  body claims is stored. Which conversations are ours is known in memory (no database work
  for made-up ids); the fetches run on a Tavus lane of their own, capped.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass

import structlog
from pydantic import ValidationError

from facetoface.compat.errors import (
    MalformedWebhook,
    UserMismatch,
    WebhookRateLimited,
    WebhookTavusUnavailable,
)
from facetoface.compat.schemas import (
    EndTavusSessionRequest,
    StartTavusSessionRequest,
    StartTavusSessionResponse,
    WebhookHint,
)
from facetoface.compat.throttle import FetchCoalescer, KeyedBuckets
from facetoface.config import Settings
from facetoface.conversations.recent import RecentConversations
from facetoface.conversations.repository import SessionRow
from facetoface.conversations.service import ConversationService, Recovered
from facetoface.db import Database, Identity
from facetoface.sessions import (
    Replay,
    SessionAlreadyActive,
    SessionOut,
    SessionSelector,
    SessionService,
    idempotency_request,
    join_url,
)
from facetoface.tavus import TavusClient, TavusError

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class StartOutcome:
    body: StartTavusSessionResponse
    #: True when an `Idempotency-Key` retry got the first start's answer back.
    replayed: bool = False


def start_response(
    session: SessionOut, meeting_token: str | None = None
) -> StartTavusSessionResponse:
    """A session in the shape `start-tavus-session` answered. A private room's token goes
    into `conversation_url` (the origin's app embeds it as it is): this answer is the owner's."""
    return StartTavusSessionResponse(
        conversation_url=join_url(session.conversation_url, meeting_token),
        conversation_id=session.conversation_id,
        mentor_conversation_id=session.mentor_conversation_id,
        daily_session_id=session.id,
        persona_name=session.mentor.name,
    )


class CompatService:
    """One per app, shared by all requests (the webhook's limiter and coalescer live here)."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        sessions: SessionService,
        conversations: ConversationService,
        *,
        recent: RecentConversations,
        tavus_lane: TavusClient,
    ) -> None:
        self.settings = settings
        self.db = db
        self.sessions = sessions
        self.conversations = conversations
        self.recent = recent
        #: The webhook's own Tavus lane: its bulkhead (`TAVUS_WEBHOOK_MAX_CONCURRENT_FETCHES`)
        #: is the global cap on its verbose fetches, and it is not the users' bulkhead, so
        #: posts anyone can send never take a user's start slot (nor open their breaker).
        self.tavus_lane = tavus_lane
        self.webhook_limiters = KeyedBuckets(
            settings.tavus_webhook_rate_per_second, settings.tavus_webhook_burst
        )
        self.fetches: FetchCoalescer[Recovered | None] = FetchCoalescer(
            settings.tavus_webhook_fetch_interval_seconds
        )

    async def aclose(self) -> None:
        await self.fetches.aclose()
        await self.tavus_lane.aclose()

    # --- start-tavus-session ----------------------------------------------------------------
    async def start(
        self, identity: Identity, request: StartTavusSessionRequest, idempotency_key: str | None
    ) -> StartOutcome:
        """Start a session for the caller (the token's user, never the body's)."""
        _check_user(identity, request.user_id)
        # Fingerprinted like `POST /v1/sessions` with `mentor_id`: one key means one start,
        # whichever of the two routes a retry comes through.
        mentor_id = request.persona_id
        idempotency = idempotency_request(
            idempotency_key, {"mentor_id": str(mentor_id) if mentor_id else None}
        )
        try:
            result = await self.sessions.start(identity, mentor_id, idempotency)
        except SessionAlreadyActive as exc:
            raise _with_live_ids(exc) from None
        if isinstance(result, Replay):
            token = result.body.get("meeting_token")
            replayed = start_response(SessionOut.model_validate(result.body), token)
            return StartOutcome(replayed, True)
        return StartOutcome(
            start_response(SessionOut.from_row(result.session), result.meeting_token)
        )

    # --- end-tavus-session ------------------------------------------------------------------
    async def end(self, identity: Identity, request: EndTavusSessionRequest) -> SessionRow:
        """End the caller's session named by the ids given (idempotent; ids naming different
        sessions, or someone else's, are a 404 and Tavus is not called)."""
        _check_user(identity, request.user_id)
        selector = SessionSelector(
            daily_session_id=request.daily_session_id,
            mentor_conversation_id=request.mentor_conversation_id,
            tavus_conversation_id=request.tavus_conversation_id,
        )
        return await self.sessions.end(identity, selector)

    # --- tavus-webhook ----------------------------------------------------------------------
    async def webhook(self, body: bytes) -> None:
        """Treat a post as a hint: for one of our conversations, ingest what Tavus reports.

        Unknown conversations are answered like known ones (the answer is no oracle for which
        conversation ids are ours) and cost no database work: they are looked up in the
        in-memory snapshot of recent conversations. The rate limit is kept per conversation
        of ours, so made-up ids, however many, never use up a real conversation's share.
        """
        try:
            hint = WebhookHint.model_validate_json(body)
        except ValidationError:
            raise MalformedWebhook("Expected a JSON object with a Tavus conversation_id.") from None
        conversation_id = hint.conversation_id
        row_id = await self.recent.row_for_tavus_id(conversation_id)
        if row_id is None:
            log.info("webhook.unknown_conversation")
            return
        wait = self.webhook_limiters.take(conversation_id)
        if wait > 0:
            raise WebhookRateLimited(
                "Too many webhook posts about this conversation; retry later.",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        try:
            recovered = await self.fetches.run(
                conversation_id, lambda: self._ingest(row_id, conversation_id)
            )
        except TavusError as exc:
            log.warning("webhook.tavus_failed", tavus_error=type(exc).__name__)
            hinted: float | None = getattr(exc, "retry_after_seconds", None)
            raise WebhookTavusUnavailable(
                "Tavus could not be asked about this conversation now; retry later.",
                retry_after_seconds=max(1, math.ceil(hinted)) if hinted else 5,
            ) from exc
        log.info(
            "webhook.ingested",
            mentor_conversation_id=str(row_id),
            recovered=recovered.recovered if recovered else 0,
        )

    async def _ingest(self, row_id: uuid.UUID, conversation_id: str) -> Recovered | None:
        return await self.conversations.ingest_from_tavus(
            row_id, conversation_id, tavus=self.tavus_lane
        )


def _check_user(identity: Identity, user_id: uuid.UUID | None) -> None:
    if user_id is not None and user_id != identity.user_id:
        # The origin took the user from this field; here it may only repeat the token's user.
        raise UserMismatch("user_id is not the signed-in user; omit it or send your own id.")


def _with_live_ids(exc: SessionAlreadyActive) -> SessionAlreadyActive:
    """The 409 with the live session's ids and join URL beside `session`, so the origin's app
    can rejoin with the fields it already reads (a private room's URL with its token: the
    409 of a start goes to the session's owner, as the start's answer does)."""
    live = exc.extra.get("session")
    extra = dict(exc.extra)
    if isinstance(live, dict):
        extra.update(
            conversation_url=join_url(live.get("conversation_url"), live.get("meeting_token")),
            conversation_id=live.get("conversation_id"),
            mentor_conversation_id=live.get("mentor_conversation_id"),
            daily_session_id=live.get("id"),
        )
    return SessionAlreadyActive(exc.detail, headers=exc.headers, extra=extra)
