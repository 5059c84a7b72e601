"""The reconciler: one bounded, idempotent pass over what callbacks and crashes left open.

1. **Unresolved starts** (`indeterminate`, or `starting` past a start's longest duration):
   the decision a user's next start or read makes too (conversations/unknown_starts.py) —
   find the conversation at Tavus (by its bound id, else by its name among the account's
   recent conversations), adopt it (the session becomes active or ended with Tavus's data)
   or, once Tavus can no longer be creating it, mark the session failed.
2. **Overdue sessions** (live past `max_call_duration` + grace): fetch Tavus's view; if it
   ended, apply its events; else end it at Tavus and close our records. **Quiet live
   sessions** (no news for `RECONCILE_LIVE_CHECK_SECONDS`): if Tavus ended them and the
   shutdown callback was lost, Tavus's events close them.
3. **Lost callbacks**: every recently ended session is compared, once, with what Tavus
   reports (`GET /v2/conversations/{id}?verbose=true`); every event we lack — `replica_joined`,
   the shutdown, the transcript, … — goes through the callback inbox (same dedupe, same
   merges). A failed Tavus end is retried.
4. **Orphans**: running conversations at Tavus that carry this installation's identity in
   their name (conversations/names.py) and whose row here owns no live session are ended
   (they bill and hold a concurrency slot); those whose row was deleted here (while their
   start waited for Tavus) are ended and deleted there. Anything else on the account —
   another app, a twin deployment, a copy of this database, an unnamed conversation — is
   never touched, only counted.
5. **Retention**: transcripts older than `TRANSCRIPT_RETENTION_DAYS`, expired idempotency keys.

Every row is isolated: an error on one (a malformed Tavus answer, a database hiccup) is
recorded on that row (`reconcile_error`) and counted, and the pass goes on; the orphan step
always runs. Rows are leased (`FOR UPDATE SKIP LOCKED` + a lease timestamp), so N replicas
can run passes at once without working on the same row; nothing is held in process memory
between passes.

The steps above are this module, in that order, one method each: it is longer than most
because a pass reads best whole (the statements live in repository.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

import structlog

from facetoface.clock import utcnow
from facetoface.config import Settings
from facetoface.conversations.names import name_prefix, row_id_from_name
from facetoface.conversations.service import ConversationService
from facetoface.conversations.status import (
    LIVE_STATUSES,
    UNRESOLVED_STATUSES,
    FailureCode,
)
from facetoface.conversations.unknown_starts import Failed, Undecided, UnknownStart, UnknownStarts
from facetoface.db import Database, DatabaseUnavailable
from facetoface.models.reconcile_run import RECONCILE_RUNS_KEPT
from facetoface.observability import metrics
from facetoface.observability.context import replica_name
from facetoface.reconcile.repository import Claimed, ReconcileRepository
from facetoface.tavus import (
    Conversation,
    ConversationDetails,
    TavusClient,
    TavusError,
    TavusStatus,
)

log = structlog.get_logger(__name__)

_PAGE_SIZE = 100
#: How long the ids of rows deleted here are kept: far past any call's end at Tavus.
_DELETED_KEPT = timedelta(days=2)
T = TypeVar("T")


@dataclass
class ReconcileReport:
    """What one pass did, by action."""

    actions: Counter[str] = field(default_factory=Counter)
    errors: int = 0

    def add(self, action: str, count: int = 1) -> None:
        if count <= 0:
            return
        self.actions[action] += count
        metrics.record_reconciler_action(action, count)


class Reconciler:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        tavus: TavusClient,
        conversations: ConversationService,
        installation_id: uuid.UUID,
    ) -> None:
        self.settings = settings
        self.db = db
        self.tavus = tavus
        self.conversations = conversations
        self.starts = UnknownStarts(conversations, list_pages=settings.reconcile_list_pages)
        self._prefix = name_prefix(settings.deployment_name, installation_id)
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Stop (the process drains): no new pass; the pass in progress finishes the row it
        is on and releases the leases of the rows it has not reached."""
        self._stopping.set()

    # --- the loop -------------------------------------------------------------------------
    async def run_forever(self) -> None:
        """Run passes every `RECONCILE_INTERVAL_SECONDS` (with jitter) until cancelled."""
        interval = self.settings.reconcile_interval_seconds
        while not self._stopping.is_set():
            # Jitter spreads N replicas' passes over the interval.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._stopping.wait(),
                    interval * (0.5 + random.random()),  # noqa: S311
                )
            if self._stopping.is_set():
                break
            try:
                await self.run_once()
            except Exception:  # one failed pass must not stop the loop
                log.exception("reconcile.pass_failed")
        log.info("reconcile.stopped")

    async def run_once(self) -> ReconcileReport:
        """One bounded pass over every kind of work."""
        started = asyncio.get_running_loop().time()
        report = ReconcileReport()
        #: Rows this pass claimed and has not worked on yet: their lease's end, by row.
        held: dict[uuid.UUID, datetime] = {}
        try:
            await self._pass(report, held)
        finally:
            # Stopped (or cancelled) mid-pass: the rows not reached go back at once.
            await self._release_held(report, held)
        duration_s = asyncio.get_running_loop().time() - started
        log.info(
            "reconcile.pass",
            actions=dict(report.actions),
            errors=report.errors,
            duration_ms=round(duration_s * 1000, 1),
        )
        await self._record_pass(report, duration_s)
        return report

    async def _pass(self, report: ReconcileReport, held: dict[uuid.UUID, datetime]) -> None:
        # One listing serves every row without a Tavus id. If it failed, each row asks Tavus
        # itself: an empty listing would read as "not created" and fail starts Tavus has.
        listing: dict[str, Conversation] | None = None
        listed = False
        for claimed in self._worked(await self._claim("unresolved", report, held), held):
            if claimed.tavus_conversation_id is None and not listed:
                listed = True
                listing = await self._step(report, None, self._list_ours(status=None))
            await self._step(report, claimed, self._resolve_start(claimed, listing, report))
        for claimed in self._worked(await self._claim("overdue", report, held), held):
            await self._step(report, claimed, self._close_overdue(claimed, report))
        for claimed in self._worked(await self._claim("quiet", report, held), held):
            await self._step(report, claimed, self._check_live(claimed, report))
        for claimed in self._worked(await self._claim("unverified", report, held), held):
            await self._step(report, claimed, self._verify(claimed, report))
        if self._stopping.is_set():
            return
        await self._step(report, None, self._end_orphans(report))
        await self._step(report, None, self._retention(report))

    def _worked(self, rows: list[Claimed], held: dict[uuid.UUID, datetime]) -> Iterator[Claimed]:
        """`rows` one by one until the reconciler stops; each row's lease counts as held until
        the loop comes back for the next one (its work is done)."""
        for claimed in rows:
            if self._stopping.is_set():
                return
            yield claimed
            held.pop(claimed.id, None)

    async def _release_held(self, report: ReconcileReport, held: dict[uuid.UUID, datetime]) -> None:
        """Give back the leases of the rows claimed and not worked on (a stop mid-pass)."""
        if not held:
            return
        by_lease: dict[datetime, list[uuid.UUID]] = {}
        for row_id, until in held.items():
            by_lease.setdefault(until, []).append(row_id)
        released = 0
        try:
            async with self.db.transaction(role="service") as session:
                repository = ReconcileRepository(session)
                for until, ids in by_lease.items():
                    released += await repository.release_leases(ids, until)
        except Exception as exc:  # the leases expire on their own
            log.warning("reconcile.release_failed", error_type=type(exc).__name__)
            return
        report.add("lease_released", released)
        log.info("reconcile.leases_released", rows=released)

    async def _record_pass(self, report: ReconcileReport, duration_s: float) -> None:
        """Keep the pass in `reconcile_runs` (the operators' console shows the recent ones).
        Never raises: the history is for people; failing to write it must not fail the pass."""
        finished = utcnow()
        try:
            async with self.db.transaction(role="service") as session:
                await ReconcileRepository(session).record_pass(
                    started_at=finished - timedelta(seconds=duration_s),
                    finished_at=finished,
                    replica=replica_name(),
                    actions=dict(report.actions),
                    errors=report.errors,
                    keep=RECONCILE_RUNS_KEPT,
                )
        except Exception as exc:
            log.warning("reconcile.history_write_failed", error_type=type(exc).__name__)

    async def _step(
        self, report: ReconcileReport, claimed: Claimed | None, work: Awaitable[T]
    ) -> T | None:
        """Run one row's (or one step's) work; an error is recorded and the pass goes on."""
        try:
            return await work
        except Exception as exc:  # isolation: one bad row must never stop the pass
            report.errors += 1
            error = type(exc).__name__
            metrics.record_reconciler_action("error")
            log.warning(
                "reconcile.step_failed",
                error_type=error,
                mentor_conversation_id=str(claimed.id) if claimed else None,
                exc_info=not isinstance(exc, TavusError | DatabaseUnavailable),
            )
            if claimed is not None:
                try:
                    async with self.db.transaction(role="service") as session:
                        await ReconcileRepository(session).record_error(claimed.id, error)
                except DatabaseUnavailable:
                    pass  # the lease expires; the row is tried again next pass
            return None

    async def _claim(
        self, kind: str, report: ReconcileReport, held: dict[uuid.UUID, datetime]
    ) -> list[Claimed]:
        s = self.settings
        now = utcnow()
        lease = timedelta(seconds=s.reconcile_lease_seconds)
        limit = s.reconcile_batch_size
        claims: dict[str, Callable[[ReconcileRepository], Awaitable[list[Claimed]]]] = {
            "unresolved": lambda repo: repo.claim_unresolved(
                now=now,
                starting_grace=timedelta(seconds=s.reconcile_starting_grace_seconds),
                lease=lease,
                limit=limit,
            ),
            "overdue": lambda repo: repo.claim_overdue(
                now=now,
                max_age=timedelta(
                    seconds=s.session_max_call_duration_seconds + s.reconcile_overdue_grace_seconds
                ),
                lease=lease,
                limit=limit,
            ),
            "quiet": lambda repo: repo.claim_quiet_live(
                now=now,
                quiet=timedelta(seconds=s.reconcile_live_check_seconds),
                lease=lease,
                limit=limit,
            ),
            "unverified": lambda repo: repo.claim_unverified(
                now=now,
                settle=timedelta(seconds=s.reconcile_settle_seconds),
                horizon=timedelta(hours=24),
                max_attempts=s.reconcile_max_attempts,
                lease=lease,
                limit=limit,
            ),
        }

        async def claim() -> list[Claimed]:
            async with self.db.transaction(role="service") as session:
                rows = await claims[kind](ReconcileRepository(session))
            held.update((row.id, now + lease) for row in rows)
            return rows

        if self._stopping.is_set():
            return []
        return await self._step(report, None, claim()) or []

    # --- 1. unresolved starts ------------------------------------------------------------
    async def _resolve_start(
        self, claimed: Claimed, listing: dict[str, Conversation] | None, report: ReconcileReport
    ) -> None:
        """The one decision (conversations/unknown_starts.py); undecided rows wait for a
        later pass."""
        start = UnknownStart(
            row_id=claimed.id,
            conversation_name=claimed.conversation_name,
            tavus_conversation_id=claimed.tavus_conversation_id,
            created_at=claimed.created_at,
            failure_code=claimed.failure_code,
        )
        decision = await self.starts.decide(start, listing=listing)
        if isinstance(decision, Undecided):
            return
        unresolved = decision.applied.before_status in UNRESOLVED_STATUSES
        if isinstance(decision, Failed):
            if decision.applied.session is not None and unresolved:
                report.add("marked_not_created")
            return
        if unresolved:
            report.add("adopted")
        self._report_recovered(decision.counts, report)

    # --- 2. overdue and quiet live sessions ----------------------------------------------
    async def _close_overdue(self, claimed: Claimed, report: ReconcileReport) -> None:
        if claimed.tavus_conversation_id:
            await self._apply_verbose(claimed.id, claimed.tavus_conversation_id, report)
            await self.conversations.end_at_tavus(claimed.tavus_conversation_id)
        closed = await self.conversations.close(
            claimed.id, failure_code=FailureCode.closed_by_reconciler
        )
        if closed is not None and closed.failure_code == FailureCode.closed_by_reconciler:
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

    # --- 3. lost callbacks ------------------------------------------------------------------
    async def _verify(self, claimed: Claimed, report: ReconcileReport) -> None:
        assert claimed.tavus_conversation_id is not None
        now = utcnow()
        if (
            claimed.failure_code == FailureCode.tavus_end_failed
            and await self.conversations.end_at_tavus(claimed.tavus_conversation_id)
        ):
            async with self.db.transaction(role="service") as session:
                await ReconcileRepository(session).clear_failure(
                    claimed.id, FailureCode.tavus_end_failed, now
                )
            report.add("ended_at_tavus")
        details = await self._apply_verbose(claimed.id, claimed.tavus_conversation_id, report)
        if details is None or details.status == TavusStatus.ended:
            # Tavus's record is final (or gone): ours now holds everything it reported.
            async with self.db.transaction(role="service") as session:
                await ReconcileRepository(session).mark_verified(claimed.id, now)
            report.add("verified")

    async def _apply_verbose(
        self, row_id: uuid.UUID, conversation_id: str, report: ReconcileReport
    ) -> ConversationDetails | None:
        recovered = await self.conversations.ingest_from_tavus(row_id, conversation_id)
        if recovered is None:
            return None
        self._report_recovered(recovered.counts, report)
        return recovered.details

    @staticmethod
    def _report_recovered(counts: Counter[str], report: ReconcileReport) -> None:
        """Count the events Tavus reported that were missing here (and the malformed ones)."""
        for action, count in counts.items():
            if action.startswith("recovered:") or action == "malformed":
                report.add(action, count)

    # --- 4. orphans ------------------------------------------------------------------------
    async def _end_orphans(self, report: ReconcileReport) -> None:
        active = await self._list_running()
        ours: dict[uuid.UUID, Conversation] = {}
        foreign = 0
        for conversation in active:
            row_id = row_id_from_name(self._prefix, conversation.conversation_name)
            if row_id is None:
                foreign += 1
            else:
                ours[row_id] = conversation
        report.add("foreign_running", foreign)
        if not ours:
            return
        async with self.db.transaction(role="service") as session:
            repository = ReconcileRepository(session)
            known = await repository.statuses(list(ours))
            deleted = await repository.deleted_here([i for i in ours if i not in known])
        for row_id, conversation in ours.items():
            if row_id in deleted:
                # Its row was deleted here (its user's delete, their erasure) while its start
                # waited for Tavus, and that start could not end it: nobody owns it now, and
                # its user asked for it to go — ended and deleted at Tavus.
                if await self.conversations.discard_at_tavus(conversation.conversation_id):
                    log.warning(
                        "reconcile.orphan_without_row_ended",
                        conversation_id=conversation.conversation_id,
                    )
                    report.add("ended_orphan_without_row")
                continue
            if row_id not in known:
                # Named like ours, but no row was ever here: not provably ours (a database
                # copied from this one shares its identity). Never touched.
                report.add("unknown_named_running")
                log.warning(
                    "reconcile.unknown_conversation", conversation_id=conversation.conversation_id
                )
                continue
            status, bound = known[row_id]
            if status in LIVE_STATUSES and bound in (None, conversation.conversation_id):
                continue  # a live session owns it
            if await self.conversations.end_at_tavus(conversation.conversation_id):
                log.warning(
                    "reconcile.orphan_ended",
                    conversation_id=conversation.conversation_id,
                    session_status=status,
                )
                report.add("ended_orphan")

    # --- 5. retention --------------------------------------------------------------------
    async def _retention(self, report: ReconcileReport) -> None:
        now = utcnow()
        limit = self.settings.reconcile_batch_size
        async with self.db.transaction(role="service") as session:
            report.add(
                "idempotency_keys_expired",
                await ReconcileRepository(session).purge_expired_keys(now, limit * 10),
            )
        async with self.db.transaction(role="service") as session:
            report.add(
                "deleted_ids_forgotten",
                await ReconcileRepository(session).forget_deleted(now - _DELETED_KEPT),
            )
        days = self.settings.transcript_retention_days
        if not days:
            return
        async with self.db.transaction(role="service") as session:
            cleared = await ReconcileRepository(session).expire_transcripts(
                now - timedelta(days=days), limit=limit, now=now
            )
        report.add("transcript_expired", cleared)

    # --- Tavus helpers ---------------------------------------------------------------------
    async def _list_ours(self, *, status: TavusStatus | None) -> dict[str, Conversation]:
        """This installation's recent conversations at Tavus, by name (bounded pages)."""
        found: dict[str, Conversation] = {}
        for conversation in await self._list(status):
            name = conversation.conversation_name or ""
            if name.startswith(self._prefix):
                found.setdefault(name, conversation)
        return found

    async def _list_running(self) -> list[Conversation]:
        running = TavusStatus.active
        return [c for c in await self._list(running) if c.status == running]

    async def _list(self, status: TavusStatus | None) -> list[Conversation]:
        conversations: list[Conversation] = []
        for page in range(1, self.settings.reconcile_list_pages + 1):
            result = await self.tavus.list_conversations(status=status, limit=_PAGE_SIZE, page=page)
            conversations.extend(result.data)
            if len(result.data) < _PAGE_SIZE:
                break
        return conversations
