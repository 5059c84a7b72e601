"""Start and end face-to-face sessions (the session lifecycle in the README).

A Tavus conversation bills from the moment it exists and cannot share our transaction, so a
start is done in phases:

1. one round trip (`SessionRepository.start`): replay a completed `Idempotency-Key`, load the
   context, decide, and write both session rows as `starting` with a fresh callback token.
   The one-live-session index refuses a second live session.
2. Tavus create, outside any transaction, sent at most once.
3. one round trip: record the conversation and mark the session `active` (and the key done).

What happens when a phase fails is decided by what Tavus may have done:

- Tavus said no (a 4xx): nothing bills; the rows are marked `failed` and the key released.
- Tavus may have created it (a 5xx, a timeout or dropped connection once the request was
  sent): the rows are marked `indeterminate`, the key stays bound to them, and the user is
  told `session_outcome_unknown`; the user's next start or read of it (`UnknownOutcomes.resolve`),
  or else the reconciler, finds the conversation by its name and adopts it (or, if Tavus
  never made it, marks it failed). A retry with the key gets that session — never a second
  conversation.
- The session was deleted while Tavus was creating it (its user's delete, their erasure):
  what Tavus made is ended and deleted there, and the start answers `410 session_deleted`.
- Tavus created it but we cannot record it (the database failed): it is ended at Tavus at
  once; if that fails too, the `starting` row is the trace the reconciler resolves by name.

The module is longer than most because these phases and their failure branches read best in
one place, in the order they run; the pieces that stand alone live beside it (start_protocol,
idempotency, tavus_failures, unknown_outcomes, data_rights, loading).
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import structlog

from facetoface.clock import utcnow
from facetoface.config import Settings
from facetoface.conversations.names import conversation_name, memory_tag, name_prefix
from facetoface.conversations.repository import SessionRow, TimelineEntry
from facetoface.conversations.service import ConversationService
from facetoface.conversations.status import LIVE_STATUSES, ConversationStatus, FailureCode
from facetoface.conversations.tokens import hash_callback_token, signed_callback_token
from facetoface.db import DatabaseUnavailable, Identity, recording_tavus_outcome
from facetoface.observability import metrics
from facetoface.sessions.context import (
    MentorContext,
)
from facetoface.sessions.cursors import decode_cursor, encode_cursor
from facetoface.sessions.errors import (
    AnonymousNotAllowed,
    SessionAlreadyActive,
    SessionDeleted,
    SessionNotFound,
    SessionOutcomeUnknown,
    TavusUnavailableError,
)
from facetoface.sessions.idempotency import (
    IdempotencyRequest,
    KeyAction,
    KeyClaim,
    Replay,
    answer_from_key,
    key_extra,
)
from facetoface.sessions.loading import (
    MentorChoice,
    mentor_context,
    mentor_of,
    refusal_problem,
    start_limits,
)
from facetoface.sessions.repository import (
    NewSession,
    SessionExtras,
    SessionRepository,
    SessionSelector,
    room_token_extra,
)
from facetoface.sessions.schemas import OwnSessionOut
from facetoface.sessions.start_protocol import PREVIEW_ALLOWS, StartOutcome
from facetoface.sessions.tavus_failures import start_failure
from facetoface.sessions.unknown_outcomes import UnknownOutcomes
from facetoface.tavus import (
    ConversationProperties,
    CreateConversationRequest,
    TavusClient,
    TavusError,
    TavusOutcomeUnknown,
    TavusServerError,
)

log = structlog.get_logger(__name__)

#: `SessionSelector` belongs to `end`'s signature: callers import it from here.
__all__ = ["SessionSelector", "SessionService"]


@dataclass(frozen=True, slots=True)
class Started:
    """A start's answer: the session, and — a private room's — the owner's join credential."""

    session: SessionRow
    #: A join credential: kept out of `repr()`, so logging this by accident leaks nothing.
    meeting_token: str | None = field(default=None, repr=False)


class SessionService:
    """The session lifecycle; one instance per app, shared by all requests."""

    def __init__(
        self,
        settings: Settings,
        repository: SessionRepository,
        conversations: ConversationService,
        tavus: TavusClient,
        installation_id: uuid.UUID,
    ) -> None:
        self.settings = settings
        self.repository = repository
        self.conversations = conversations
        self.tavus = tavus
        self.db = repository.db
        #: Every conversation name carries this installation's identity (conversations/names).
        self.name_prefix = name_prefix(settings.deployment_name, installation_id)
        self.unknown = UnknownOutcomes(settings, repository, conversations)

    # --- start ----------------------------------------------------------------------------
    async def start(
        self,
        identity: Identity,
        mentor_id: uuid.UUID | None,
        idempotency: IdempotencyRequest | None = None,
    ) -> Started | Replay:
        """Start a session for the caller; see the module docstring for the phases.

        With an idempotency key, a retry of a completed start gets that session back
        (`Replay`), whatever else holds now (an open circuit, a quota reached since).
        A private room's meeting token goes with the answer (and with a replay's or a 409's
        session while it is live): they all go to the session's owner only.

        A live session whose start's outcome is unknown is decided first (`UnknownOutcomes`):
        adopted, it is the live session of the 409 (with its room); never created, this start
        goes on.
        """
        return await self._start(identity, mentor_id, idempotency, resolve=True)

    async def _start(
        self,
        identity: Identity,
        mentor_id: uuid.UUID | None,
        idempotency: IdempotencyRequest | None,
        *,
        resolve: bool,
    ) -> Started | Replay:
        if (
            identity.claims.get("is_anonymous") is True
            and not self.settings.allow_anonymous_sessions
        ):
            # Anonymous sign-ins are cheap to mint; every session bills (OWASP API6).
            raise AnonymousNotAllowed("Sign in with an account to start a session.")
        wait = self.tavus.breaker.retry_after_seconds()
        if wait > 0 and idempotency is None:
            raise self._circuit_open(wait)
        now = utcnow()
        row_id = uuid.uuid4()
        # The URL Tavus posts to proves itself: a forged one is refused before any database work.
        token = signed_callback_token(self.settings.callback_signing_key, row_id)
        new = (
            NewSession(
                daily_session_id=uuid.uuid4(),
                mentor_conversation_id=row_id,
                conversation_name=conversation_name(self.name_prefix, row_id),
                callback_token_hash=hash_callback_token(token),
            )
            if wait <= 0
            else None
        )
        key = None
        if idempotency is not None:
            key = KeyClaim(
                key=idempotency.key,
                request_hash=idempotency.request_hash,
                locked_until=now + timedelta(seconds=self.settings.idempotency_lock_seconds),
                expires_at=now + timedelta(seconds=self.settings.idempotency_key_ttl_seconds),
            )
        attempt = await self.repository.start(
            identity,
            mentor_id=mentor_id,
            now=now,
            limits=start_limits(self.settings, now),
            new=new,
            key=key,
        )
        if attempt.outcome is StartOutcome.key:
            assert attempt.key_state is not None, "a key outcome names the key's state"
            unknown = attempt.key_session
            if resolve and unknown is not None and self.unknown.outcome_unknown(unknown, now):
                # The key's start may have made a conversation: decide, then answer again
                # (adopted: the replay; never created: this start goes on with the key).
                await self.unknown.resolve(identity, unknown)
                return await self._start(identity, mentor_id, idempotency, resolve=False)
            return answer_from_key(
                attempt.key_state, attempt.key_session, attempt.key_meeting_token
            )
        if new is None:
            raise self._circuit_open(wait)
        if attempt.outcome is StartOutcome.refused:
            raise refusal_problem(self.settings, attempt, now)
        if attempt.outcome is StartOutcome.conflict:
            # The start's own statement read the live session (None only if it ended in
            # the meantime: then there is nothing to rejoin).
            live = attempt.live_session
            if resolve and live is not None and self.unknown.outcome_unknown(live, now):
                live = await self.unknown.resolve(identity, live)
                if live.conversation_status not in LIVE_STATUSES:
                    return await self._start(identity, mentor_id, idempotency, resolve=False)
            raise SessionAlreadyActive(
                "End the live session (or rejoin it) before starting another.",
                extra={"session": session_json(live, attempt.live_meeting_token)} if live else None,
            )
        mentor = mentor_of(attempt)
        context = mentor_context(self.settings, attempt, mentor)
        tag = memory_tag(self.settings.deployment_name, identity.user_id)
        memory = self.settings.tavus_memory if attempt.mentor_memory else "off"
        log.info("session.starting", mentor_conversation_id=str(new.mentor_conversation_id))
        return await self._create_at_tavus(
            identity,
            idempotency=idempotency,
            new=new,
            request=CreateConversationRequest(
                persona_id=mentor.persona_id,
                replica_id=mentor.replica_id,
                callback_url=self.callback_url(new.mentor_conversation_id, token),
                conversation_name=new.conversation_name,
                conversational_context=context.text,
                custom_greeting=self.settings.session_custom_greeting or None,
                require_auth=True if self.settings.private_rooms else None,
                participant_tags=[tag] if memory == "participant" else None,
                memory_stores=[tag] if memory == "legacy" else None,
                properties=ConversationProperties(
                    max_call_duration=self.settings.session_max_call_duration_seconds,
                    participant_left_timeout=self.settings.session_participant_left_timeout_seconds,
                    participant_absent_timeout=(
                        self.settings.session_participant_absent_timeout_seconds
                    ),
                    language=context.language,
                    enable_recording=self.settings.session_enable_recording or None,
                    enable_closed_captions=self.settings.session_enable_closed_captions,
                ),
            ),
        )

    def _circuit_open(self, wait: float) -> Exception:
        # Tavus failed repeatedly just now: answer at once; nothing was written.
        metrics.record_start_failure("tavus_circuit_open")
        return TavusUnavailableError(
            "The video service is not answering; try again shortly.",
            retry_after_seconds=max(1, math.ceil(wait)),
        )

    def callback_url(self, conversation_row_id: uuid.UUID, token: str) -> str:
        """Where Tavus posts this conversation's events; the path carries its secret token."""
        return f"{self.settings.public_base_url}/v1/callbacks/tavus/{conversation_row_id}/{token}"

    async def _create_at_tavus(
        self,
        identity: Identity,
        *,
        idempotency: IdempotencyRequest | None,
        new: NewSession,
        request: CreateConversationRequest,
    ) -> Started:
        row_id = new.mentor_conversation_id
        bound = log.bind(mentor_conversation_id=str(row_id))
        try:
            conversation = await self.tavus.create_conversation(request)
        except (TavusOutcomeUnknown, TavusServerError) as exc:
            # Sent, and Tavus may have acted on it: never send it again for this intent.
            await self._record_failure(identity, new, exc, idempotency, definite=False)
            raise SessionOutcomeUnknown(
                "The video service did not confirm the session. It is being checked; "
                "try again in a minute.",
                retry_after_seconds=60,
                extra={"session_id": str(new.daily_session_id)},
            ) from exc
        except TavusError as exc:
            await self._record_failure(identity, new, exc, idempotency, definite=True)
            raise start_failure(exc).problem(self.settings, exc) from exc
        key = (
            key_extra(
                KeyAction.done, identity.user_id, idempotency.key, new.daily_session_id, utcnow()
            )
            if idempotency is not None
            else None
        )
        token: str | None = conversation.meeting_token
        if token:
            key = room_token_extra(row_id, token, key)
        try:
            # Tavus created it: recording that is never shed by load shedding (db.py).
            with recording_tavus_outcome():
                applied = await self.conversations.adopt(
                    row_id,
                    conversation_id=conversation.conversation_id,
                    conversation_url=conversation.conversation_url,
                    start_time=conversation.created_at or utcnow(),
                    identity=identity,
                    extra=key,
                )
        except DatabaseUnavailable as exc:
            # We cannot record the conversation: end it rather than leave it billing. If
            # Tavus cannot be told either, the `starting` row is the trace the reconciler
            # resolves by the conversation's name.
            bound.warning("session.compensating_end", conversation_id=conversation.conversation_id)
            metrics.record_start_failure(FailureCode.database_unavailable.value)
            stopped = await self.conversations.end_at_tavus(conversation.conversation_id)
            raise SessionOutcomeUnknown(
                "The session could not be recorded; it was stopped. Try again shortly."
                if stopped
                else "The session could not be recorded and is being checked; try again in a "
                "minute.",
                retry_after_seconds=5,
                extra={"session_id": str(new.daily_session_id)},
            ) from exc
        row = applied.session
        if row is None:
            # The session was deleted (its user's DELETE, or their erasure) while Tavus was
            # creating it: nothing of ours owns the conversation, so it must not run or be
            # kept. If Tavus cannot be told now, the reconciler ends a running conversation
            # named like ours that has no row.
            bound.warning("session.deleted_during_start")
            discarded = await self.conversations.discard_at_tavus(conversation.conversation_id)
            raise SessionDeleted(
                "The session was deleted while it was starting; its video call "
                + ("was stopped." if discarded else "will be stopped shortly.")
            )
        if row.conversation_status != ConversationStatus.active:
            # The user ended the session while Tavus was creating it: end what was created.
            bound.info("session.ended_during_start", status=row.conversation_status)
            await self.conversations.end_at_tavus(conversation.conversation_id)
            token = None
        bound.info("session.started", conversation_id=conversation.conversation_id)
        metrics.record_session_started()
        return Started(row, token or None)

    async def _record_failure(
        self,
        identity: Identity,
        new: NewSession,
        exc: TavusError,
        idempotency: IdempotencyRequest | None,
        *,
        definite: bool,
    ) -> None:
        code = start_failure(exc).code
        log.warning(
            "session.start_failed",
            mentor_conversation_id=str(new.mentor_conversation_id),
            definite=definite,
            tavus_error=type(exc).__name__,
            tavus_status=exc.status_code,
        )
        metrics.record_start_failure(code.value)
        key = None
        if idempotency is not None:
            # Nothing was created: a retry may try again. Maybe created: the key stays bound.
            action = KeyAction.release if definite else KeyAction.unlock
            key = key_extra(
                action, identity.user_id, idempotency.key, new.daily_session_id, utcnow()
            )
        try:
            if definite:
                await self.conversations.fail(
                    new.mentor_conversation_id, code, identity=identity, extra=key
                )
            else:
                await self.conversations.mark_unresolved(
                    new.mentor_conversation_id, code, identity=identity, extra=key
                )
        except DatabaseUnavailable:
            # The row stays `starting`; the reconciler resolves it by name (a conversation
            # Tavus never created is marked failed: conversations/unknown_starts.py).
            log.warning(
                "session.failure_unrecorded",
                mentor_conversation_id=str(new.mentor_conversation_id),
            )

    # --- end ------------------------------------------------------------------------------
    async def end(self, identity: Identity, session: uuid.UUID | SessionSelector) -> SessionRow:
        """End the caller's session (by id, or as a `SessionSelector` names it): idempotent;
        anyone else's session — or ids that name different sessions — is a 404, and Tavus is
        not called.

        Tavus's end is attempted (and retried by the client); if it still fails, our records
        are closed anyway and keep `failure_code = tavus_end_failed`, so the reconciler ends
        the conversation at Tavus later.
        """
        selector = (
            session
            if isinstance(session, SessionSelector)
            else SessionSelector(daily_session_id=session)
        )
        row, claimed = await self.repository.claim_end(identity, selector, utcnow())
        if row is None:
            raise SessionNotFound("No session with this id belongs to you.")
        if not claimed:
            return row  # already closed (or failed): ending again changes nothing
        tavus_ended = True
        if row.tavus_conversation_id:
            tavus_ended = await self.conversations.end_at_tavus(row.tavus_conversation_id)
        with recording_tavus_outcome():
            closed = await self.conversations.close(
                row.mentor_conversation_id,
                failure_code=None if tavus_ended else FailureCode.tavus_end_failed,
                identity=identity,
            )
        if closed is None:
            raise SessionNotFound("No session with this id belongs to you.")
        log.info(
            "session.ended",
            session_id=str(row.id),
            session_status=closed.session_status,
            duration_seconds=closed.duration_seconds,
            tavus_ended=tavus_ended,
        )
        return closed

    # --- read -----------------------------------------------------------------------------
    async def get(self, identity: Identity, session_id: uuid.UUID) -> SessionRow:
        """The caller's session; 404 for anyone else's."""
        row = await self.repository.get(identity, session_id)
        if row is None:
            raise SessionNotFound("No session with this id belongs to you.")
        return row

    async def list_sessions(
        self, identity: Identity, *, limit: int, cursor: str | None
    ) -> tuple[list[SessionRow], str | None]:
        """A page of the caller's sessions (newest first) and the next page's cursor."""
        before = decode_cursor(cursor) if cursor else None
        rows = await self.repository.page(identity, limit=limit + 1, before=before)
        page = rows[:limit]
        return page, encode_cursor(page[-1]) if len(rows) > limit else None

    async def detail(
        self, identity: Identity, session_id: uuid.UUID
    ) -> tuple[SessionRow, SessionExtras, list[TimelineEntry]]:
        """The caller's session with transcript, recording, analysis and event timeline.

        A session whose start's outcome is unknown is decided first (`UnknownOutcomes.resolve`; a
        503 `session_outcome_unknown` while it cannot be)."""
        found = await self.repository.detail(identity, session_id)
        if found is None:
            raise SessionNotFound("No session with this id belongs to you.")
        if self.unknown.outcome_unknown(found[0], utcnow()):
            await self.unknown.resolve(identity, found[0])
            found = await self.repository.detail(identity, session_id)
            if found is None:
                raise SessionNotFound("No session with this id belongs to you.")
        return found

    async def preview_context(
        self, identity: Identity, mentor_id: uuid.UUID | None
    ) -> tuple[MentorContext, MentorChoice]:
        """The context (and mentor) a start would use now; same rules, nothing written."""
        now = utcnow()
        attempt = await self.repository.start(
            identity,
            mentor_id=mentor_id,
            now=now,
            limits=start_limits(self.settings, now),
            new=None,
            key=None,
        )
        if attempt.refusal is not None and attempt.refusal not in PREVIEW_ALLOWS:
            raise refusal_problem(self.settings, attempt, now)
        mentor = mentor_of(attempt)
        return mentor_context(self.settings, attempt, mentor), mentor


def session_json(row: SessionRow, meeting_token: str | None = None) -> dict[str, Any]:
    """A session as the API renders it (the body of a 201, a replay, a 409's `session`), with a
    private room's `meeting_token` only when there is one (these answers go to the owner)."""
    return OwnSessionOut.for_owner(row, meeting_token).to_json()
