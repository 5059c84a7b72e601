"""Ingest one Tavus callback: authenticate, store once, apply, in one short transaction.

The callback URL carries a per-session secret token (only its SHA-256 is stored); a callback
is accepted only with the right token *and* the conversation id bound to that session. The
event is stored raw in the inbox under a unique dedupe key in the same transaction that
applies its effect, so an acknowledged callback is never lost and never applied twice.
"""

from __future__ import annotations

import hmac
import uuid
from dataclasses import replace
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from facetoface.callbacks.events import (
    CallbackEnvelope,
    apply_event,
    dedupe_key,
    parse_envelope,
)
from facetoface.callbacks.repository import CallbackRepository
from facetoface.db import Database
from facetoface.errors import BadRequest, NotFound
from facetoface.models import ConversationStatus, utcnow
from facetoface.observability import metrics
from facetoface.sessions.repository import LockedConversation, SessionRepository
from facetoface.sessions.service import hash_callback_token
from facetoface.sessions.state import ConversationState

log = structlog.get_logger(__name__)


class CallbackNotFound(NotFound):
    code = "callback_not_found"
    title = "Unknown callback URL"


class MalformedCallbackError(BadRequest):
    code = "malformed_callback"
    title = "Not a Tavus conversation callback"


class CallbackService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def ingest(self, mentor_conversation_id: str, token: str, body: bytes) -> str:
        """Store and apply one callback; returns the outcome (`applied`, `no_effect`,
        `ignored` or `duplicate`). Raises CallbackNotFound for a forged or mis-bound one."""
        try:
            row_id = uuid.UUID(mentor_conversation_id)
        except ValueError:
            raise CallbackNotFound("No such callback URL.") from None
        try:
            event, raw = parse_envelope(body)
        except ValueError as exc:
            raise MalformedCallbackError(str(exc)) from None
        now = utcnow()
        async with self.db.transaction(role="service") as session:
            repo = SessionRepository(session)
            locked = await repo.lock_conversation(row_id)
            # Same answer for an unknown session, a wrong token and a wrong conversation:
            # a forger learns nothing about which part was wrong.
            if locked is None or not hmac.compare_digest(
                locked.callback_token_hash, hash_callback_token(token)
            ):
                raise CallbackNotFound("No such callback URL.")
            bound = locked.state.tavus_conversation_id
            if bound is not None and bound != event.conversation_id:
                log.warning("callback.misbound", mentor_conversation_id=str(row_id))
                raise CallbackNotFound("No such callback URL.")
            outcome, new_state, stored = await self._store_and_apply(
                session, locked, event, raw, now
            )
        return self._report(row_id, event, locked.state, outcome, new_state, stored)

    async def ingest_trusted(
        self, session: AsyncSession, row_id: uuid.UUID, raw: dict[str, Any]
    ) -> str:
        """Store and apply an event fetched from Tavus with our API key (the reconciler's
        verbose GET): no token to check, same inbox, same dedupe, same effects."""
        event = CallbackEnvelope.model_validate(raw)
        repo = SessionRepository(session)
        locked = await repo.lock_conversation(row_id)
        if locked is None:
            return "no_effect"
        bound = locked.state.tavus_conversation_id
        if bound is not None and bound != event.conversation_id:
            return "no_effect"
        outcome, new_state, stored = await self._store_and_apply(
            session, locked, event, raw, utcnow()
        )
        return self._report(row_id, event, locked.state, outcome, new_state, stored)

    async def _store_and_apply(
        self,
        session: AsyncSession,
        locked: LockedConversation,
        event: CallbackEnvelope,
        raw: dict[str, Any],
        now: datetime,
    ) -> tuple[str, ConversationState, bool]:
        row_id = locked.id
        # An event can beat the start call to recording the id: the token proves it
        # belongs here, so bind the conversation now.
        state = replace(locked.state, tavus_conversation_id=event.conversation_id)
        effect = apply_event(state, event, now)
        inbox: dict[str, Any] = {
            "id": uuid.uuid4(),
            "mentor_conversation_id": row_id,
            "conversation_id": event.conversation_id,
            "event_type": event.event_type,
            "dedupe_key": dedupe_key(row_id, event, raw),
            "event_timestamp": event.timestamp,
            "payload": raw,
            "received_at": now,
        }
        if locked.state.status == ConversationStatus.failed.value:
            outcome = "no_effect"  # never ran for the user; keep its id for the reconciler
            new_state = state
        elif not effect.known:
            outcome, new_state = "ignored", state
        else:
            outcome, new_state = "applied", effect.state
        inbox["outcome"] = outcome
        callbacks = CallbackRepository(session)
        if new_state == locked.state:
            stored = await callbacks.store(inbox)
        else:
            stored = await SessionRepository(session).write_state(
                locked, new_state, now=now, inbox=callbacks.insert_event(inbox)
            )
        return outcome, new_state, stored

    def _report(
        self,
        row_id: uuid.UUID,
        event: CallbackEnvelope,
        before: ConversationState,
        outcome: str,
        new_state: ConversationState,
        stored: bool,
    ) -> str:
        result = outcome if stored else "duplicate"
        log.info(
            "callback.ingested",
            mentor_conversation_id=str(row_id),
            event_type=event.event_type[:100],
            outcome=result,
        )
        metrics.record_callback(event.event_type, result)
        if stored and before.is_live and not new_state.is_live:
            metrics.record_session_ended(new_state.shutdown_reason)
        return result
