"""Start and end face-to-face sessions (DESIGN.md, "Session lifecycle").

Start is done in phases, because a Tavus conversation bills from the moment it exists and
cannot share our transaction:

1. one transaction: load the context (one statement), insert both session rows as `starting`
   with a fresh callback token. The one-live-session index refuses a second live session.
2. Tavus create, outside any transaction, sent at most once.
3. one transaction: record the conversation and mark the session `active`.

A definite Tavus refusal marks the rows `failed`; a create whose outcome is unknown marks them
`indeterminate` (the reconciler looks the conversation up by its name). A crash between the
phases leaves a `starting` row that the reconciler resolves the same way.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import secrets
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from facetoface.callbacks.repository import CallbackRepository, TimelineEntry
from facetoface.config import Settings
from facetoface.db import Database, DatabaseUnavailable, Identity
from facetoface.errors import (
    BadGateway,
    BadRequest,
    Conflict,
    FacetofaceError,
    Forbidden,
    NotFound,
    ServiceUnavailable,
)
from facetoface.models import LIVE_STATUSES, ConversationStatus, utcnow
from facetoface.observability import metrics
from facetoface.sessions.context import MentorContext, UserContextData, build_mentor_context
from facetoface.sessions.idempotency import (
    IdempotencyKeyInFlight,
    IdempotencyKeyMismatch,
    IdempotencyRequest,
    Replay,
)
from facetoface.sessions.repository import (
    DataRightsRepository,
    IdempotencyRepository,
    LiveSessionExists,
    PersonaRow,
    SessionExtras,
    SessionRepository,
    SessionRow,
    StartData,
)
from facetoface.sessions.schemas import SessionOut
from facetoface.sessions.state import close_by_user, derive
from facetoface.tavus import (
    ConversationProperties,
    CreateConversationRequest,
    TavusAuthError,
    TavusClient,
    TavusConcurrencyLimit,
    TavusError,
    TavusNotFound,
    TavusOutcomeUnknown,
    TavusOutOfCredits,
    TavusRateLimited,
    TavusRejected,
    TavusServerError,
    TavusUnavailable,
)

log = structlog.get_logger(__name__)

_UNRESOLVED = {ConversationStatus.starting.value, ConversationStatus.indeterminate.value}


# --- errors -------------------------------------------------------------------------------
class ProfileNotFound(NotFound):
    code = "profile_not_found"
    title = "Profile not found"


class MentorNotFound(NotFound):
    code = "mentor_not_found"
    title = "Mentor not found"


class SessionNotFound(NotFound):
    code = "session_not_found"
    title = "Session not found"


class PremiumMentorRequired(Forbidden):
    code = "premium_mentor_required"
    title = "This mentor needs a paid subscription"


class AnonymousNotAllowed(Forbidden):
    code = "anonymous_not_allowed"
    title = "Anonymous users cannot start sessions"


class TooManyStarts(FacetofaceError):
    status_code = 429
    code = "rate_limited"
    title = "Too many sessions started"


class SessionAlreadyActive(Conflict):
    code = "session_already_active"
    title = "A session is already live"


class NoMentorConfigured(BadGateway):
    code = "mentor_not_configured"
    title = "No Tavus persona or replica is configured"


class TavusCapacityReached(ServiceUnavailable):
    code = "tavus_capacity_reached"
    title = "All video mentor slots are busy"


class TavusUnavailableError(ServiceUnavailable):
    code = "tavus_unavailable"
    title = "The video service is unavailable"


class TavusConfigurationError(BadGateway):
    code = "tavus_configuration_error"
    title = "The video service rejected this deployment's request"


class TavusOutOfCreditsError(BadGateway):
    code = "tavus_out_of_credits"
    title = "The video service account is out of credits"


class SessionOutcomeUnknown(ServiceUnavailable):
    code = "session_outcome_unknown"
    title = "The video service did not confirm the session"


# --- helpers ------------------------------------------------------------------------------
def hash_callback_token(token: str) -> bytes:
    """The stored form of a callback token (SHA-256; the token itself is never stored)."""
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True, slots=True)
class MentorChoice:
    persona: PersonaRow | None
    persona_id: str | None
    replica_id: str | None
    name: str | None
    avatar_url: str | None


class SessionService:
    """The session lifecycle; one instance per app, shared by all requests."""

    def __init__(self, settings: Settings, db: Database, tavus: TavusClient) -> None:
        self.settings = settings
        self.db = db
        self.tavus = tavus

    # --- start ----------------------------------------------------------------------------
    async def start(
        self,
        identity: Identity,
        mentor_id: uuid.UUID | None,
        idempotency: IdempotencyRequest | None = None,
    ) -> SessionRow | Replay:
        """Start a session for the caller; see the module docstring for the phases.

        With an idempotency key, a retry of a completed start gets its response back
        (`Replay`) instead of a second conversation.
        """
        user_id = identity.user_id
        if (
            identity.claims.get("is_anonymous") is True
            and not self.settings.allow_anonymous_sessions
        ):
            # Anonymous sign-ins are cheap to mint; every session bills (OWASP API6).
            raise AnonymousNotAllowed("Sign in with an account to start a session.")
        wait = self.tavus.breaker.retry_after_seconds()
        if wait > 0:
            # Tavus failed repeatedly just now: answer at once and write nothing.
            metrics.record_start_failure("tavus_circuit_open")
            raise TavusUnavailableError(
                "The video service is not answering; try again shortly.",
                retry_after_seconds=math.ceil(wait),
            )
        now = utcnow()
        daily_session_id, conversation_row_id = uuid.uuid4(), uuid.uuid4()
        callback_token = secrets.token_urlsafe(32)
        try:
            async with self.db.transaction(identity, role="service") as session:
                repo = SessionRepository(session)
                window = timedelta(seconds=self.settings.session_start_limit_window_seconds)
                data = await repo.load_start_data(user_id, mentor_id, recent_since=now - window)
                if data.profile is None:
                    raise ProfileNotFound("Create the user's profile before starting a session.")
                if data.recent_starts >= self.settings.session_start_limit:
                    oldest = data.oldest_recent_start or now
                    raise TooManyStarts(
                        f"At most {self.settings.session_start_limit} sessions per "
                        f"{int(window.total_seconds())} s; try again later.",
                        headers={
                            "Retry-After": str(
                                max(1, math.ceil((oldest + window - now).total_seconds()))
                            )
                        },
                    )
                mentor = self._choose_mentor(data, mentor_id)
                context = self._build_context(data, mentor)
                conversation_name = f"{self.settings.deployment_name}:{conversation_row_id}"
                if idempotency is not None:
                    replay = await self._claim_key(
                        session, identity, idempotency, daily_session_id, now
                    )
                    if replay is not None:
                        return replay
                await repo.insert_session(
                    user_id=user_id,
                    daily_session_id=daily_session_id,
                    mentor_conversation_id=conversation_row_id,
                    session_date=_local_date(now, data.profile.get("timezone")),
                    now=now,
                    conversation_name=conversation_name,
                    persona=mentor.persona,
                    persona_id=mentor.persona_id,
                    replica_id=mentor.replica_id,
                    mentor_name=mentor.name,
                    mentor_avatar_url=mentor.avatar_url,
                    callback_token_hash=hash_callback_token(callback_token),
                )
        except LiveSessionExists:
            # The refused INSERT aborted that transaction; read the live session in a new one.
            async with self.db.transaction(identity) as session:
                live = await SessionRepository(session).get_live(user_id)
            raise SessionAlreadyActive(
                "End the live session (or rejoin it) before starting another.",
                extra={"session": _session_json(live)} if live else None,
            ) from None
        log.info("session.starting", mentor_conversation_id=str(conversation_row_id))
        return await self._create_at_tavus(
            identity,
            idempotency=idempotency,
            daily_session_id=daily_session_id,
            conversation_row_id=conversation_row_id,
            request=CreateConversationRequest(
                persona_id=mentor.persona_id,
                replica_id=mentor.replica_id,
                callback_url=self.callback_url(conversation_row_id, callback_token),
                conversation_name=conversation_name,
                conversational_context=context.text,
                custom_greeting=self.settings.session_custom_greeting or None,
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

    async def _claim_key(
        self,
        session: AsyncSession,
        identity: Identity,
        idempotency: IdempotencyRequest,
        daily_session_id: uuid.UUID,
        now: datetime,
    ) -> Replay | None:
        """Claim the key for this start, or decide what a retry gets (see idempotency.py)."""
        keys = IdempotencyRepository(session)
        settings = self.settings
        for _ in range(2):
            stored = await keys.claim(
                user_id=identity.user_id,
                key=idempotency.key,
                request_hash=idempotency.request_hash,
                daily_session_id=daily_session_id,
                now=now,
                locked_until=now + timedelta(seconds=settings.idempotency_lock_seconds),
                expires_at=now + timedelta(seconds=settings.idempotency_key_ttl_seconds),
            )
            if stored is None:
                return None
            if not hmac.compare_digest(stored.request_hash, idempotency.request_hash):
                raise IdempotencyKeyMismatch(
                    "This Idempotency-Key was used for a different request body."
                )
            if stored.state == "done" and stored.response_status is not None:
                return Replay(stored.response_status, stored.response_body)
            retry_after = max(1, int((stored.locked_until - now).total_seconds()) + 1)
            if stored.locked_until > now or stored.daily_session_id is None:
                raise IdempotencyKeyInFlight(
                    "The first request with this key is still running.",
                    headers={"Retry-After": str(min(retry_after, 30))},
                )
            # The first attempt ended without a stored answer (its outcome was unknown, or
            # its process died): answer with its session as it stands now.
            row = await SessionRepository(session).get_for_user(
                identity.user_id, stored.daily_session_id
            )
            if row is not None and row.conversation_status == ConversationStatus.failed.value:
                await keys.release(identity.user_id, idempotency.key)
                continue  # it never created anything: this retry may start afresh
            if row is None or row.conversation_status in _UNRESOLVED:
                raise IdempotencyKeyInFlight(
                    "The first request's outcome is still being resolved.",
                    headers={"Retry-After": "10"},
                )
            body = _session_json(row)
            await keys.complete(identity.user_id, idempotency.key, status=201, body=body, now=now)
            return Replay(201, body)
        raise IdempotencyKeyInFlight("Retry shortly.", headers={"Retry-After": "1"})

    def callback_url(self, conversation_row_id: uuid.UUID, token: str) -> str:
        """Where Tavus posts this conversation's events; the path carries its secret token."""
        return f"{self.settings.public_base_url}/v1/callbacks/tavus/{conversation_row_id}/{token}"

    async def _create_at_tavus(
        self,
        identity: Identity,
        *,
        idempotency: IdempotencyRequest | None,
        daily_session_id: uuid.UUID,
        conversation_row_id: uuid.UUID,
        request: CreateConversationRequest,
    ) -> SessionRow:
        bound = log.bind(mentor_conversation_id=str(conversation_row_id))
        try:
            conversation = await self.tavus.create_conversation(request)
        except TavusOutcomeUnknown as exc:
            await self._mark_unresolved(
                identity, conversation_row_id, ConversationStatus.indeterminate, exc, idempotency
            )
            raise SessionOutcomeUnknown(
                "The video service did not confirm the session in time. It is being checked; "
                "try again in a minute.",
                retry_after_seconds=60,
                extra={"session_id": str(daily_session_id)},
            ) from exc
        except TavusError as exc:
            await self._mark_unresolved(
                identity, conversation_row_id, ConversationStatus.failed, exc, idempotency
            )
            raise self._start_error(exc) from exc
        start_time = conversation.created_at or utcnow()
        try:
            async with self.db.transaction(identity, role="service") as session:
                now = utcnow()
                row = await SessionRepository(session).mark_active(
                    conversation_row_id,
                    tavus_conversation_id=conversation.conversation_id,
                    conversation_url=conversation.conversation_url,
                    start_time=start_time,
                    now=now,
                )
                if idempotency is not None and row is not None:
                    await IdempotencyRepository(session).complete(
                        identity.user_id,
                        idempotency.key,
                        status=201,
                        body=_session_json(row),
                        now=now,
                    )
        except DatabaseUnavailable:
            # We cannot record the conversation: end it rather than leave it billing unowned.
            bound.warning("session.compensating_end", conversation_id=conversation.conversation_id)
            metrics.record_start_failure("database_unavailable")
            await self._end_at_tavus(conversation.conversation_id)
            raise
        assert row is not None, "the session row was written in phase 1"
        if row.conversation_status != ConversationStatus.active.value:
            # The user ended the session while Tavus was creating it: end what was created.
            bound.info("session.ended_during_start", status=row.conversation_status)
            await self._end_at_tavus(conversation.conversation_id)
        bound.info("session.started", conversation_id=conversation.conversation_id)
        metrics.record_session_started()
        return row

    async def _mark_unresolved(
        self,
        identity: Identity,
        conversation_row_id: uuid.UUID,
        status: ConversationStatus,
        exc: TavusError,
        idempotency: IdempotencyRequest | None,
    ) -> None:
        log.warning(
            "session.start_failed",
            mentor_conversation_id=str(conversation_row_id),
            status=status.value,
            tavus_error=type(exc).__name__,
            tavus_status=exc.status_code,
        )
        metrics.record_start_failure(_failure_code(exc))
        async with self.db.transaction(identity, role="service") as session:
            now = utcnow()
            await SessionRepository(session).mark_unresolved(
                conversation_row_id, status=status, failure_code=_failure_code(exc), now=now
            )
            if idempotency is not None:
                keys = IdempotencyRepository(session)
                if status is ConversationStatus.failed:
                    await keys.release(identity.user_id, idempotency.key)
                else:
                    await keys.unlock(identity.user_id, idempotency.key, now)

    def _start_error(self, exc: TavusError) -> Exception:
        if isinstance(exc, TavusConcurrencyLimit):
            return TavusCapacityReached(
                "Every video mentor slot is in use; try again shortly.",
                retry_after_seconds=self.settings.tavus_concurrency_retry_after_seconds,
            )
        if isinstance(exc, TavusRateLimited):
            return TavusCapacityReached(
                "The video service asked us to slow down; try again shortly.",
                retry_after_seconds=int(exc.retry_after_seconds or 5),
            )
        if isinstance(exc, TavusOutOfCredits):
            return TavusOutOfCreditsError("The operator must top up the video service account.")
        if isinstance(exc, TavusAuthError | TavusRejected):
            return TavusConfigurationError(
                "The video service refused this deployment's request (API key, persona or "
                "replica configuration)."
            )
        if isinstance(exc, TavusServerError | TavusUnavailable):
            return TavusUnavailableError("The video service is not answering; try again shortly.")
        return TavusUnavailableError("The video service failed; try again shortly.")

    def _choose_mentor(self, data: StartData, mentor_id: uuid.UUID | None) -> MentorChoice:
        persona = data.persona
        if mentor_id is not None and persona is None:
            raise MentorNotFound("No mentor with this id belongs to you.")
        if persona is not None:
            if persona.avatar_is_premium and (data.profile or {}).get(
                "subscription_tier", "free"
            ) not in {"paid"}:
                raise PremiumMentorRequired("Choose another mentor or upgrade the subscription.")
            persona_id = persona.tavus_persona_id or persona.avatar_persona_id
            replica_id = persona.replica_id or persona.avatar_replica_id
            name: str | None = persona.name or persona.avatar_name
            avatar_url = persona.avatar_thumbnail_url
        else:
            persona_id, replica_id = None, None
            name, avatar_url = None, None
        if not (persona_id or replica_id):
            persona_id = self.settings.default_persona_id
            replica_id = self.settings.default_replica_id
        if not (persona_id or replica_id):
            raise NoMentorConfigured(
                "Set TAVUS_DEFAULT_PERSONA_ID or TAVUS_DEFAULT_REPLICA_ID, or give the user a "
                "mentor with a Tavus persona or replica."
            )
        return MentorChoice(persona, persona_id, replica_id, name, avatar_url)

    def _build_context(self, data: StartData, mentor: MentorChoice) -> MentorContext:
        context_data = UserContextData.model_validate(
            {
                "profile": data.profile,
                "onboarding": data.onboarding,
                "ritual": data.ritual,
                "emotional_categories": data.emotional_categories,
                "goals": data.goals,
                "mentor_name": mentor.name,
            }
        )
        context = build_mentor_context(
            context_data,
            max_chars=self.settings.context_max_chars,
            item_max_chars=self.settings.context_item_max_chars,
        )
        if context.language_fallback:
            log.info("session.language_fallback", language_code=context.language_code)
        return context

    # --- end ------------------------------------------------------------------------------
    async def end(self, identity: Identity, session_id: uuid.UUID) -> SessionRow:
        """End the caller's session: idempotent; anyone else's session is a 404.

        Tavus's end is attempted (and retried by the client); if it still fails, our records
        are closed anyway and the row keeps `failure_code = tavus_end_failed` so the
        reconciler ends the conversation at Tavus later.
        """
        async with self.db.transaction(identity, role="service") as session:
            row, claimed = await SessionRepository(session).claim_end(
                identity.user_id, session_id, utcnow()
            )
        if row is None:
            raise SessionNotFound("No session with this id belongs to you.")
        if claimed is None:
            return row  # already closed (or failed): ending again changes nothing
        tavus_ended = True
        if claimed.state.tavus_conversation_id:
            tavus_ended = await self._end_at_tavus(claimed.state.tavus_conversation_id)
        extra = None if tavus_ended else {"failure_code": "tavus_end_failed"}
        now = utcnow()
        async with self.db.transaction(identity, role="service") as session:
            repo = SessionRepository(session)
            closed = close_by_user(claimed.state, now)
            if not await repo.write_state(claimed, closed, now=now, extra=extra):
                # A callback (or a concurrent end) changed the row since the claim: merge
                # into what is stored now, under the row lock.
                fresh = await repo.lock_conversation(claimed.id, user_id=identity.user_id)
                assert fresh is not None
                if fresh.state.status == ConversationStatus.ending.value:
                    await repo.write_state(
                        fresh, close_by_user(fresh.state, now), now=now, extra=extra
                    )
                    metrics.record_session_ended("user_end")
                result = await repo.get_for_user(identity.user_id, session_id)
                assert result is not None
                log.info(
                    "session.ended",
                    session_id=str(session_id),
                    session_status=result.session_status,
                    duration_seconds=result.duration_seconds,
                    tavus_ended=tavus_ended,
                    merged=True,
                )
                return result
        view = derive(closed)
        log.info(
            "session.ended",
            session_id=str(session_id),
            session_status=view.session_status,
            duration_seconds=view.duration_seconds,
            tavus_ended=tavus_ended,
        )
        metrics.record_session_ended(closed.shutdown_reason or "user_end")
        return replace(
            row,
            conversation_status=view.conversation_status,
            session_status=view.session_status,
            started_at=view.started_at,
            end_time=view.end_time,
            completed_at=view.end_time,
            duration_seconds=view.duration_seconds,
            shutdown_reason=closed.shutdown_reason,
            failure_code=extra["failure_code"] if extra else row.failure_code,
        )

    async def _end_at_tavus(self, conversation_id: str) -> bool:
        """End a conversation at Tavus; True when it is (or already was) ended."""
        try:
            await self.tavus.end_conversation(conversation_id)
        except TavusNotFound:
            return True  # Tavus no longer knows it: nothing is running
        except TavusError as exc:
            log.warning(
                "session.tavus_end_failed",
                conversation_id=conversation_id,
                tavus_error=type(exc).__name__,
                tavus_status=exc.status_code,
            )
            return False
        return True

    # --- data rights ----------------------------------------------------------------------
    async def delete(self, identity: Identity, session_id: uuid.UUID) -> None:
        """Delete the caller's session: end it if live, hard-delete the conversation at
        Tavus (its recording and transcript there), then our rows, events included.

        If Tavus cannot delete it now, nothing of ours is deleted (503): the request is
        safe to repeat, and the conversation stays findable until Tavus has let it go.
        """
        row = await self.get(identity, session_id)
        if row.conversation_status in {s.value for s in LIVE_STATUSES}:
            row = await self.end(identity, session_id)
        if row.tavus_conversation_id:
            await self._delete_at_tavus(row.tavus_conversation_id)
        async with self.db.transaction(identity, role="service") as session:
            await DataRightsRepository(session).delete_session(identity.user_id, session_id)
        log.info("session.deleted", session_id=str(session_id))

    async def purge_user(self, user_id: uuid.UUID) -> int:
        """Delete everything stored about a user, at Tavus first; returns conversations
        deleted there. Raises TavusUnavailableError (nothing deleted here) if Tavus fails."""
        async with self.db.transaction(Identity(user_id), role="service") as session:
            conversation_ids = await DataRightsRepository(session).conversation_ids(user_id)
        for conversation_id in conversation_ids:
            await self._delete_at_tavus(conversation_id)
        async with self.db.transaction(Identity(user_id), role="service") as session:
            await DataRightsRepository(session).delete_user(user_id)
        log.info("user.purged", conversations=len(conversation_ids))
        return len(conversation_ids)

    async def _delete_at_tavus(self, conversation_id: str) -> None:
        try:
            await self.tavus.delete_conversation(conversation_id, hard=True)
        except TavusNotFound:
            return  # already gone
        except TavusError as exc:
            raise TavusUnavailableError(
                "The video service could not delete the conversation now; nothing was "
                "deleted, try again shortly."
            ) from exc

    # --- read -----------------------------------------------------------------------------
    async def get(self, identity: Identity, session_id: uuid.UUID) -> SessionRow:
        """The caller's session; 404 for anyone else's."""
        async with self.db.transaction(identity) as session:
            row = await SessionRepository(session).get_for_user(identity.user_id, session_id)
        if row is None:
            raise SessionNotFound("No session with this id belongs to you.")
        return row

    async def list_sessions(
        self, identity: Identity, *, limit: int, cursor: str | None
    ) -> tuple[list[SessionRow], str | None]:
        """A page of the caller's sessions (newest first) and the next page's cursor."""
        before = decode_cursor(cursor) if cursor else None
        async with self.db.transaction(identity) as session:
            rows = await SessionRepository(session).list_for_user(
                identity.user_id, limit=limit + 1, before=before
            )
        page = rows[:limit]
        return page, encode_cursor(page[-1]) if len(rows) > limit else None

    async def detail(
        self, identity: Identity, session_id: uuid.UUID
    ) -> tuple[SessionRow, SessionExtras, list[TimelineEntry]]:
        """The caller's session with transcript, recording, analysis and event timeline."""
        async with self.db.transaction(identity) as session:
            found = await SessionRepository(session).get_detail(identity.user_id, session_id)
            if found is None:
                raise SessionNotFound("No session with this id belongs to you.")
            row, extras = found
            timeline = await CallbackRepository(session).timeline(row.mentor_conversation_id)
        return row, extras, timeline

    async def preview_context(
        self, identity: Identity, mentor_id: uuid.UUID | None
    ) -> tuple[MentorContext, MentorChoice]:
        """The context (and mentor) a start would use now; same rules, nothing written."""
        async with self.db.transaction(identity) as session:
            data = await SessionRepository(session).load_start_data(identity.user_id, mentor_id)
        if data.profile is None:
            raise ProfileNotFound("Create the user's profile first.")
        mentor = self._choose_mentor(data, mentor_id)
        return self._build_context(data, mentor), mentor

    async def find(
        self,
        identity: Identity,
        *,
        tavus_conversation_id: str | None = None,
        mentor_conversation_id: uuid.UUID | None = None,
        daily_session_id: uuid.UUID | None = None,
    ) -> SessionRow:
        """The caller's session named by every id given; 404 when they name different
        sessions or someone else's (the origin's end call names sessions this way)."""
        async with self.db.transaction(identity) as session:
            row = await SessionRepository(session).find_for_user(
                identity.user_id,
                tavus_conversation_id=tavus_conversation_id,
                mentor_conversation_id=mentor_conversation_id,
                daily_session_id=daily_session_id,
            )
        if row is None:
            raise SessionNotFound("No session with these ids belongs to you.")
        return row


def _local_date(now: datetime, timezone: Any) -> date:
    """The session's calendar date in the user's own timezone (the origin used UTC's)."""
    if isinstance(timezone, str) and timezone:
        try:
            return now.astimezone(ZoneInfo(timezone)).date()
        except (ZoneInfoNotFoundError, ValueError):
            log.info("session.unknown_timezone")
    return now.astimezone(UTC).date()


def _failure_code(exc: TavusError) -> str:
    return {
        TavusConcurrencyLimit: "tavus_concurrency_limit",
        TavusRateLimited: "tavus_rate_limited",
        TavusOutOfCredits: "tavus_out_of_credits",
        TavusAuthError: "tavus_auth_failed",
        TavusServerError: "tavus_server_error",
        TavusUnavailable: "tavus_unavailable",
        TavusOutcomeUnknown: "tavus_outcome_unknown",
    }.get(type(exc), "tavus_rejected")


def _session_json(row: SessionRow) -> dict[str, Any]:
    return SessionOut.from_row(row).model_dump(mode="json")


class InvalidCursor(BadRequest):
    code = "invalid_cursor"
    title = "Invalid pagination cursor"


def encode_cursor(row: SessionRow) -> str:
    """An opaque cursor pointing just after `row` in newest-first order."""
    raw = json.dumps({"c": row.created_at.isoformat(), "i": str(row.id)}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in ("c", "i")):
            raise ValueError("not a cursor")
        created_at = datetime.fromisoformat(data["c"])
        if created_at.tzinfo is None:
            raise ValueError("naive")
        return created_at, uuid.UUID(data["i"])
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidCursor("Use the `next_cursor` of a previous page.") from exc
