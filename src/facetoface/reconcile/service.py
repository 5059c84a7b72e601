"""The reconciler: one bounded, idempotent pass over what callbacks and crashes left open.

1. **Unresolved starts** (`indeterminate`, or `starting` past a start's longest duration):
   find the conversation at Tavus — by its bound id, else by its name among the account's
   recent conversations — and adopt it (the session becomes active or ended with Tavus's
   data) or, when Tavus never created it, mark the session failed.
2. **Overdue sessions** (live past `max_call_duration` + grace): fetch Tavus's view; if it
   ended, apply its events; else end it at Tavus and close our records. **Quiet live
   sessions** (no news for `RECONCILE_LIVE_CHECK_SECONDS`): if Tavus ended them and the
   shutdown callback was lost, Tavus's events close them.
3. **Incomplete sessions** (ended, but no shutdown or transcript after a while — a lost
   callback — or a failed Tavus end): fetch `GET /v2/conversations/{id}?verbose=true` and
   apply its events through the callback inbox (same dedupe, same effects); retry the end.
4. **Orphans**: conversations at Tavus named after this deployment that are still active but
   belong to no live session are ended (they bill and hold a concurrency slot).

Rows are leased (`FOR UPDATE SKIP LOCKED` + a lease timestamp), so N replicas can run passes at
once without working on the same row; nothing is held in process memory between passes.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass, field, replace
from datetime import timedelta

import structlog

from facetoface.callbacks.service import CallbackService
from facetoface.config import Settings
from facetoface.console.ops.service import record_reconcile_pass
from facetoface.db import Database
from facetoface.models import ConversationStatus, utcnow
from facetoface.observability import metrics
from facetoface.reconcile.repository import Claimed, ReconcileRepository
from facetoface.sessions.repository import DataRightsRepository, SessionRepository
from facetoface.sessions.state import close_by_user
from facetoface.tavus import (
    Conversation,
    ConversationDetails,
    TavusClient,
    TavusError,
    TavusNotFound,
)

log = structlog.get_logger(__name__)

_PAGE_SIZE = 100


@dataclass
class ReconcileReport:
    """What one pass did, by action."""

    actions: Counter[str] = field(default_factory=Counter)
    errors: int = 0

    def add(self, action: str) -> None:
        self.actions[action] += 1
        metrics.record_reconciler_action(action)


class Reconciler:
    def __init__(self, settings: Settings, db: Database, tavus: TavusClient) -> None:
        self.settings = settings
        self.db = db
        self.tavus = tavus
        self.callbacks = CallbackService(db)
        self._prefix = f"{settings.deployment_name}:"

    # --- the loop -------------------------------------------------------------------------
    async def run_forever(self) -> None:
        """Run passes every `RECONCILE_INTERVAL_SECONDS` (with jitter) until cancelled."""
        interval = self.settings.reconcile_interval_seconds
        while True:
            # Jitter spreads N replicas' passes over the interval.
            await asyncio.sleep(interval * (0.5 + random.random()))  # noqa: S311
            try:
                await self.run_once()
            except Exception:  # one failed pass must not stop the loop
                log.exception("reconcile.pass_failed")

    async def run_once(self) -> ReconcileReport:
        """One bounded pass over all four kinds of work."""
        started = asyncio.get_running_loop().time()
        report = ReconcileReport()
        listing: dict[str, Conversation] | None = None
        for claimed in await self._claim("unresolved"):
            if claimed.tavus_conversation_id is None and listing is None:
                listing = await self._list_ours(report, status=None)
            await self._guard(report, self._resolve_start(claimed, listing or {}, report))
        for claimed in await self._claim("overdue"):
            await self._guard(report, self._close_overdue(claimed, report))
        for claimed in await self._claim("quiet"):
            await self._guard(report, self._check_live(claimed, report))
        for claimed in await self._claim("incomplete"):
            await self._guard(report, self._complete(claimed, report))
        await self._guard(report, self._end_orphans(report))
        await self._expire_transcripts(report)
        log.info(
            "reconcile.pass",
            actions=dict(report.actions),
            errors=report.errors,
            duration_ms=round((asyncio.get_running_loop().time() - started) * 1000, 1),
        )
        await record_reconcile_pass(
            self.db,
            actions=report.actions,
            errors=report.errors,
            duration_s=asyncio.get_running_loop().time() - started,
        )
        return report

    async def _guard(self, report: ReconcileReport, work: Awaitable[None]) -> None:
        try:
            await work
        except TavusError as exc:
            report.errors += 1
            log.warning("reconcile.tavus_error", tavus_error=type(exc).__name__)

    async def _claim(self, kind: str) -> list[Claimed]:
        s = self.settings
        now = utcnow()
        lease = timedelta(seconds=s.reconcile_lease_seconds)
        limit = s.reconcile_batch_size
        async with self.db.transaction(role="service") as session:
            repo = ReconcileRepository(session)
            if kind == "unresolved":
                return await repo.claim_unresolved(
                    now=now,
                    starting_grace=timedelta(seconds=s.reconcile_starting_grace_seconds),
                    lease=lease,
                    limit=limit,
                )
            if kind == "overdue":
                return await repo.claim_overdue(
                    now=now,
                    max_age=timedelta(
                        seconds=s.session_max_call_duration_seconds
                        + s.reconcile_overdue_grace_seconds
                    ),
                    lease=lease,
                    limit=limit,
                )
            if kind == "quiet":
                return await repo.claim_quiet_live(
                    now=now,
                    quiet=timedelta(seconds=s.reconcile_live_check_seconds),
                    lease=lease,
                    limit=limit,
                )
            return await repo.claim_incomplete(
                now=now,
                settle=timedelta(seconds=s.reconcile_settle_seconds),
                horizon=timedelta(hours=24),
                max_attempts=s.reconcile_max_attempts,
                lease=lease,
                limit=limit,
            )

    # --- 1. unresolved starts ------------------------------------------------------------
    async def _resolve_start(
        self, claimed: Claimed, listing: dict[str, Conversation], report: ReconcileReport
    ) -> None:
        found: Conversation | None
        if claimed.tavus_conversation_id:
            found = await self._get(claimed.tavus_conversation_id)
        else:
            found = listing.get(claimed.conversation_name)
        if found is None:
            age = utcnow() - claimed.created_at
            if age.total_seconds() >= self.settings.reconcile_not_created_after_seconds:
                await self._mark_not_created(claimed.id)
                report.add("marked_not_created")
            return
        async with self.db.transaction(role="service") as session:
            repo = SessionRepository(session)
            locked = await repo.lock_conversation(claimed.id)
            if locked is None:
                return
            state = locked.state
            if state.status in {
                ConversationStatus.starting.value,
                ConversationStatus.indeterminate.value,
            }:
                state = replace(
                    state,
                    status=ConversationStatus.active.value,
                    tavus_conversation_id=found.conversation_id,
                    start_time=state.start_time or found.created_at or utcnow(),
                )
                await repo.write_state(
                    locked,
                    state,
                    now=utcnow(),
                    extra={"conversation_url": found.conversation_url},
                )
                report.add("adopted")
            elif state.tavus_conversation_id is None:
                await repo.write_state(
                    locked,
                    replace(state, tavus_conversation_id=found.conversation_id),
                    now=utcnow(),
                )
        # Whatever Tavus already knows (a shutdown, a transcript) goes through the inbox.
        await self._apply_verbose(claimed.id, found.conversation_id, report)

    async def _mark_not_created(self, row_id: uuid.UUID) -> None:
        async with self.db.transaction(role="service") as session:
            repo = SessionRepository(session)
            locked = await repo.lock_conversation(row_id)
            if locked is None or locked.state.status not in {
                ConversationStatus.starting.value,
                ConversationStatus.indeterminate.value,
            }:
                return
            await repo.write_state(
                locked,
                replace(locked.state, status=ConversationStatus.failed.value),
                now=utcnow(),
                extra={"failure_code": "not_created_at_tavus"},
            )

    # --- 2. overdue ------------------------------------------------------------------------
    async def _close_overdue(self, claimed: Claimed, report: ReconcileReport) -> None:
        if claimed.tavus_conversation_id:
            await self._apply_verbose(claimed.id, claimed.tavus_conversation_id, report)
            await self._end_at_tavus(claimed.tavus_conversation_id)
        async with self.db.transaction(role="service") as session:
            repo = SessionRepository(session)
            locked = await repo.lock_conversation(claimed.id)
            if locked is None or not locked.state.is_live:
                return  # Tavus's events closed it
            now = utcnow()
            await repo.write_state(
                locked,
                close_by_user(locked.state, now),
                now=now,
                extra={"failure_code": "closed_by_reconciler"},
            )
        report.add("closed_overdue")

    async def _check_live(self, claimed: Claimed, report: ReconcileReport) -> None:
        """A live session with no news: if Tavus ended it, its events close ours."""
        assert claimed.tavus_conversation_id is not None
        details = await self._apply_verbose(claimed.id, claimed.tavus_conversation_id, report)
        if details is not None and details.conversation_url and claimed.conversation_url is None:
            async with self.db.transaction(role="service") as session:
                await ReconcileRepository(session).set_conversation_url(
                    claimed.id, details.conversation_url, utcnow()
                )
            report.add("join_url_recovered")

    # --- 3. incomplete ---------------------------------------------------------------------
    async def _complete(self, claimed: Claimed, report: ReconcileReport) -> None:
        assert claimed.tavus_conversation_id is not None
        if claimed.failure_code == "tavus_end_failed" and await self._end_at_tavus(
            claimed.tavus_conversation_id
        ):
            async with self.db.transaction(role="service") as session:
                await ReconcileRepository(session).clear_failure(
                    claimed.id, "tavus_end_failed", utcnow()
                )
            report.add("ended_at_tavus")
        await self._apply_verbose(claimed.id, claimed.tavus_conversation_id, report)

    async def _apply_verbose(
        self, row_id: uuid.UUID, conversation_id: str, report: ReconcileReport
    ) -> ConversationDetails | None:
        details = await self._get(conversation_id, verbose=True)
        if details is None:
            return None
        assert isinstance(details, ConversationDetails)
        for event in details.events:
            raw = {**event.model_dump(mode="json"), "conversation_id": conversation_id}
            async with self.db.transaction(role="service") as session:
                outcome = await self.callbacks.ingest_trusted(session, row_id, raw)
            if outcome == "applied":
                report.add(f"recovered:{event.event_type}")
        return details

    # --- 4. orphans ------------------------------------------------------------------------
    async def _end_orphans(self, report: ReconcileReport) -> None:
        active = await self._list_ours(report, status="active")
        if not active:
            return
        by_row: dict[uuid.UUID, Conversation] = {}
        for name, conversation in active.items():
            try:
                by_row[uuid.UUID(name.removeprefix(self._prefix))] = conversation
            except ValueError:
                continue
        async with self.db.transaction(role="service") as session:
            known = await ReconcileRepository(session).statuses(list(by_row))
        for row_id, conversation in by_row.items():
            status, bound = known.get(row_id, (None, None))
            owned = status in {
                ConversationStatus.starting.value,
                ConversationStatus.active.value,
                ConversationStatus.ending.value,
                ConversationStatus.indeterminate.value,
            } and bound in (None, conversation.conversation_id)
            if owned:
                continue
            if await self._end_at_tavus(conversation.conversation_id):
                log.warning(
                    "reconcile.orphan_ended",
                    conversation_id=conversation.conversation_id,
                    session_status=status,
                )
                report.add("ended_orphan")

    # --- 5. retention --------------------------------------------------------------------
    async def _expire_transcripts(self, report: ReconcileReport) -> None:
        days = self.settings.transcript_retention_days
        if not days:
            return
        now = utcnow()
        async with self.db.transaction(role="service") as session:
            cleared = await DataRightsRepository(session).expire_transcripts(
                now - timedelta(days=days), limit=self.settings.reconcile_batch_size, now=now
            )
        for _ in range(cleared):
            report.add("transcript_expired")

    # --- Tavus helpers ---------------------------------------------------------------------
    async def _list_ours(
        self, report: ReconcileReport, *, status: str | None
    ) -> dict[str, Conversation]:
        """This deployment's recent conversations at Tavus, by name (bounded pages)."""
        found: dict[str, Conversation] = {}
        for page in range(1, self.settings.reconcile_list_pages + 1):
            result = await self.tavus.list_conversations(
                status="active" if status == "active" else None, limit=_PAGE_SIZE, page=page
            )
            for conversation in result.data:
                name = conversation.conversation_name or ""
                if name.startswith(self._prefix) and (
                    status is None or conversation.status == status
                ):
                    found.setdefault(name, conversation)
            if len(result.data) < _PAGE_SIZE:
                break
        return found

    async def _get(self, conversation_id: str, *, verbose: bool = False) -> Conversation | None:
        try:
            return await self.tavus.get_conversation(conversation_id, verbose=verbose)
        except TavusNotFound:
            return None

    async def _end_at_tavus(self, conversation_id: str) -> bool:
        try:
            await self.tavus.end_conversation(conversation_id)
        except TavusNotFound:
            return True
        except TavusError as exc:
            log.warning("reconcile.end_failed", tavus_error=type(exc).__name__)
            return False
        return True
