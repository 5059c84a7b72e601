"""Group commit: concurrent small writes sent as one message, one transaction, one commit.

Each write on the hot path costs the process a round trip's worth of driver work (a pool
checkout, the send, the wait, the result) and PostgreSQL a commit. Under load many callbacks
are in flight at once; `GroupCommit` lets them share both:

1. A write joins the queue.
2. If fewer than `lanes` batches are in flight, its request leads: it takes the queue (up to
   `max_batch` writes, its own among them) and sends it at once (`Database.run_each`). A lone
   request therefore waits for nobody: group commit adds no delay when there is no group.
3. Otherwise it waits. Whatever queued while the lanes were busy goes as the next batch, led
   by the first waiting request when a lane frees up.
4. A batch that fails as a whole for a reason of its own (a statement's error, a deadlock
   with another replica's batch) is run again one write at a time, so each write gets the
   answer it would have had alone; a failure of the database itself (unreachable, timed
   out, saturated) is every write's answer, as it would have been.

Writes are sorted by their `order` key inside a batch, so two batches (two lanes, two
replicas) lock rows in the same order and cannot deadlock each other on them.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from facetoface.db.failures import UNAVAILABLE_REASONS, DatabaseUnavailable, database_unavailable
from facetoface.db.statements import Rows, Statement
from facetoface.observability import timing

if TYPE_CHECKING:
    from facetoface.db.database import Database
    from facetoface.db.roles import Role

#: Failures of the database itself, which every write of a batch shares: a batch that met one
#: is not run again write by write. A conflict (a deadlock, a serialization failure) is the
#: batch's own: alone, its writes may well pass.
_SHARED_FAILURES = UNAVAILABLE_REASONS - {"conflict"}

_LEAD = object()


class _Write:
    __slots__ = ("error", "order", "params", "rows", "settled", "statement", "taken", "turn")

    def __init__(self, statement: Statement, params: Mapping[str, Any], order: str) -> None:
        loop = asyncio.get_running_loop()
        self.statement = statement
        self.params = params
        self.order = order
        self.rows: Rows | None = None
        self.error: BaseException | None = None
        #: In a batch, out of the queue.
        self.taken = False
        #: Resolved when the write is answered.
        self.settled: asyncio.Future[None] = loop.create_future()
        #: Resolved when the write is answered, or with `_LEAD` when its request must lead.
        self.turn: asyncio.Future[object] = loop.create_future()

    @property
    def done(self) -> bool:
        return self.settled.done()

    def finish(self, rows: Rows | None = None, error: BaseException | None = None) -> None:
        self.rows, self.error = rows, error
        self.settled.set_result(None)
        if not self.turn.done():
            self.turn.set_result(None)

    def result(self) -> Rows:
        if self.error is not None:
            raise self.error
        assert self.rows is not None
        return self.rows


class GroupCommit:
    """One statement shape's writes for no user (`role`), coalesced (see the module)."""

    def __init__(
        self,
        db: Database,
        *,
        role: Role | None,
        operation: str,
        lanes: int = 4,
        max_batch: int = 32,
        max_queued: int = 1024,
    ) -> None:
        self.db = db
        self.role: Role | None = role
        self.operation = operation
        self.lanes = lanes
        self.max_batch = max_batch
        self.max_queued = max_queued
        self._queue: deque[_Write] = deque()
        self._leading = 0

    @property
    def queued(self) -> int:
        """Writes waiting for a lane."""
        return len(self._queue)

    async def run(self, statement: Statement, params: Mapping[str, Any], *, order: str) -> Rows:
        """Run `statement` with `params` in a group commit; its rows (or its error)."""
        if len(self._queue) >= self.max_queued:
            raise database_unavailable("saturated")
        write = _Write(statement, params, order)
        self._queue.append(write)
        if self._leading < self.lanes:
            self._leading += 1
        else:
            queued_at = time.perf_counter()
            try:
                turn = await write.turn
            except asyncio.CancelledError:
                # Promoted as it was cancelled: it passes the lead on. Answered as it was
                # cancelled (or not yet either): it never led, and frees no lane.
                turn = write.turn
                if turn.done() and not turn.cancelled() and turn.result() is _LEAD:
                    self._pass_the_lead()
                raise
            if turn is not _LEAD:
                timing.add("db", time.perf_counter() - queued_at)
                return write.result()
        try:
            # Lead until its own write has gone; promoted after another leader took it, it
            # has nothing to send.
            while not write.taken:
                await self._flush(self._take())
        finally:
            self._pass_the_lead()
        if not write.done:
            await write.settled  # in another leader's batch, on the wire
        return write.result()

    def _take(self) -> list[_Write]:
        batch: list[_Write] = []
        while self._queue and len(batch) < self.max_batch:
            write = self._queue.popleft()
            write.taken = True
            batch.append(write)
        return batch

    def _pass_the_lead(self) -> None:
        """A lane frees up: the first write still queued leads the next batch."""
        self._leading -= 1
        for write in self._queue:
            if not write.turn.done():
                self._leading += 1
                write.turn.set_result(_LEAD)
                return

    async def _flush(self, batch: list[_Write]) -> None:
        """Send `batch` and give each write its answer; raises only when cancelled, and then
        every write of the batch still unanswered is told the outcome is unknown (the
        leader's request was cut off: whether the database committed is unknown; 503, and
        the writes are idempotent, so their senders retry)."""
        batch.sort(key=lambda write: write.order)
        try:
            await self._answer(batch)
        finally:
            for write in batch:
                if not write.done:
                    write.finish(error=database_unavailable("connection_lost"))

    async def _answer(self, batch: list[_Write]) -> None:
        try:
            results = await self._send(batch)
        except Exception as exc:
            if len(batch) > 1 and not _shared(exc):
                # Failed as a whole: each write alone gets its own answer.
                for write in batch:
                    await self._answer([write])
                return
            for write in batch:
                write.finish(error=exc)
            return
        for write, rows in zip(batch, results, strict=True):
            write.finish(rows)

    async def _send(self, batch: list[_Write]) -> list[Rows]:
        return await self.db.run_each(
            [(write.statement, write.params) for write in batch],
            role=self.role,
            operation=self.operation,
        )


def _shared(exc: Exception) -> bool:
    """True when `exc` is the database's own failure, which every write of the batch shares."""
    return isinstance(exc, DatabaseUnavailable) and exc.extra.get("reason") in _SHARED_FAILURES
