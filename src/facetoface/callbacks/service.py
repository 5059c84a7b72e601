"""Ingest one Tavus callback: authenticate, store once, apply — one round trip.

The callback URL carries a per-session secret token (only its SHA-256 is stored) and, since
callback URLs are signed, an HMAC of the session's row id: a forged URL is refused in memory,
before any database work (or body parsing). A callback is accepted only with the right token
*and* the conversation id bound to that session. The
event is stored raw in the inbox under a unique dedupe key in the same transaction that
applies its effect (`ConversationService.ingest`), so an acknowledged callback is never lost
and never applied twice.
"""

from __future__ import annotations

import uuid

import structlog

from facetoface.config import Settings
from facetoface.conversations.events import MalformedCallback, parse_body
from facetoface.conversations.recent import RecentConversations
from facetoface.conversations.service import ConversationService
from facetoface.conversations.status import CallbackOutcome
from facetoface.conversations.tokens import TokenForm, hash_callback_token, token_form
from facetoface.errors import BadRequest, NotFound
from facetoface.observability.context import add_request_facts

log = structlog.get_logger(__name__)


class CallbackNotFound(NotFound):
    code = "callback_not_found"
    title = "Unknown callback URL"


class MalformedCallbackError(BadRequest):
    code = "malformed_callback"
    title = "Not a Tavus conversation callback"


class CallbackService:
    def __init__(
        self,
        conversations: ConversationService,
        *,
        settings: Settings,
        recent: RecentConversations,
    ) -> None:
        self.conversations = conversations
        self.settings = settings
        self.recent = recent

    async def authenticate(self, mentor_conversation_id: str, token: str) -> uuid.UUID:
        """The row id of a callback URL this service may have given out; `CallbackNotFound`
        for any other, decided in memory (the route calls it before reading the body)."""
        try:
            row_id = uuid.UUID(mentor_conversation_id)
        except ValueError:
            raise CallbackNotFound("No such callback URL.") from None
        await self._check_url(row_id, token)
        return row_id

    async def _check_url(self, row_id: uuid.UUID, token: str) -> None:
        """Refuse, without database work, a URL this service never gave out: a signed token
        must carry the MAC of its row id; an unsigned one (a session started before URLs were
        signed) must name a conversation that may still hear from Tavus (an in-memory
        snapshot). What passes is still checked against the stored token hash."""
        # Read when first needed: commands that never take a callback run without the secret
        # (`serve` refuses to start outside development without it).
        form = token_form(self.settings.callback_signing_key, row_id, token)
        if form is TokenForm.signed:
            return
        if form is TokenForm.legacy and await self.recent.has_row(row_id):
            return
        raise CallbackNotFound("No such callback URL.")

    async def ingest(self, mentor_conversation_id: str, token: str, body: bytes) -> str:
        """Store and apply one callback; returns the outcome (`applied`, `no_effect`,
        `ignored` or `duplicate`). Raises CallbackNotFound for a forged or mis-bound one."""
        row_id = await self.authenticate(mentor_conversation_id, token)
        try:
            event = parse_body(body)
        except MalformedCallback as exc:
            raise MalformedCallbackError(str(exc)) from None
        result = await self.conversations.ingest(
            row_id, event, token_hash=hash_callback_token(token), raw_body=body
        )
        if not result.accepted:
            if result.misbound:
                log.warning("callback.misbound", mentor_conversation_id=str(row_id))
            # Same answer for an unknown session, a wrong token and a wrong conversation: a
            # forger learns nothing about which part was wrong.
            raise CallbackNotFound("No such callback URL.")
        outcome = result.outcome
        assert outcome is not None
        # The hottest route logs once: its facts ride on the request's `http.request` line.
        if not add_request_facts(**result.facts):
            log.info("callback.ingested", **result.facts)
        return CallbackOutcome(outcome).value
