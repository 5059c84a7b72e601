"""Group commit (`facetoface.db.group_commit`) on a real PostgreSQL: a lone write goes at
once, concurrent writes share round trips and commits, a batch that fails for one write's
reason (a statement's error, a deadlock between two batches) is answered write by write, a
database failure is every write's answer, and neither a cancelled leader nor a failure
leaves a write unanswered or the queue stalled.

Round trips are counted as the identity statements `Database` sends (one per message).
Three tests run on a stand-in that holds round trips until told (`_HeldDatabase`): the
interleavings they need (two lanes freeing up in one turn of the loop, a cancel landing
between an answer and its wake-up) happen under load on a real server but not on demand.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from facetoface.db import Database, DatabaseUnavailable, GroupCommit, Rows, Statement
from tests.conftest import RunningService, base_settings
from tests.support.chaos import proxy  # noqa: F401 (a fixture)
from tests.support.eventually import eventually
from tests.support.sessions import start_quiet
from tests.support.statements import StatementCounter
from tests.support.tcp_proxy import TcpProxy

#: The statement every write runs: `n` back, after `sleep` seconds, divided by `d`.
WRITE = Statement(
    "SELECT %(n)s::int AS n, pg_sleep(%(sleep)s::float8) AS slept, 1 / %(d)s::int AS one"
)


def _params(n: int, *, sleep: float = 0.0, d: int = 1) -> dict[str, Any]:
    return {"n": n, "sleep": sleep, "d": d}


@pytest.fixture
async def db(pg_database_url: str) -> AsyncIterator[Database]:
    database = Database(base_settings(database_url=pg_database_url))
    yield database
    await database.dispose()


def _group(db: Database, lanes: int = 1) -> GroupCommit:
    return GroupCommit(db, role=None, operation="test:group", lanes=lanes)


def _apply_round_trips() -> float:
    """The service's callback round trips so far (its metric, by operation)."""
    value = REGISTRY.get_sample_value(
        "facetoface_db_query_duration_seconds_count",
        {"operation": "apply:mentor_conversations"},
    )
    return value or 0.0


async def _round_trips(db: Database, work: Any) -> tuple[Any, int]:
    counter = StatementCounter(db.engine)
    try:
        result = await work
    finally:
        counter.close()
    return result, counter.identity_count


async def _behind_a_slow_write(group: GroupCommit, writes: list[dict[str, Any]]) -> list[Any]:
    """One slow write takes the only lane; `writes` queue behind it and go as one batch.
    Each result or exception, the slow write's first."""
    slow = asyncio.ensure_future(group.run(WRITE, _params(-1, sleep=0.3), order="0"))
    await asyncio.sleep(0.1)  # the slow write is on the wire
    queued = [group.run(WRITE, params, order=f"{i:03}") for i, params in enumerate(writes)]
    return await asyncio.gather(slow, *queued, return_exceptions=True)


async def test_a_lone_write_goes_at_once_in_one_round_trip(db: Database) -> None:
    rows, trips = await _round_trips(db, _group(db).run(WRITE, _params(7), order="a"))
    assert [row["n"] for row in rows] == [7]
    assert trips == 1


async def test_concurrent_writes_share_one_round_trip_and_get_their_own_rows(
    db: Database,
) -> None:
    group = _group(db)
    results, trips = await _round_trips(
        db, _behind_a_slow_write(group, [_params(n) for n in range(20)])
    )
    assert [rows[0]["n"] for rows in results] == [-1, *range(20)]
    assert trips == 2  # the slow write alone, then the 20 together


async def test_one_writes_error_is_its_own_and_the_others_commit(db: Database) -> None:
    group = _group(db)
    writes = [_params(n, d=0 if n == 5 else 1) for n in range(10)]
    results, trips = await _round_trips(db, _behind_a_slow_write(group, writes))
    [slow, *answers] = results
    assert slow[0]["n"] == -1
    assert isinstance(answers[5], psycopg.errors.DivisionByZero)
    assert [rows[0]["n"] for i, rows in enumerate(answers) if i != 5] == [
        n for n in range(10) if n != 5
    ]
    assert trips == 1 + 1 + 10  # the slow write, the failed batch, then each alone


async def test_a_write_of_a_failed_batch_is_not_committed_twice(db: Database) -> None:
    """The failed batch rolled back as a whole: the writes run again alone write once."""
    await _create_probe_table(db)
    group = _group(db)
    bump = Statement(
        "INSERT INTO group_commit_probe VALUES (%(k)s) RETURNING 1 / %(d)s::int AS one"
    )
    try:
        slow = asyncio.ensure_future(group.run(WRITE, _params(-1, sleep=0.3), order="0"))
        await asyncio.sleep(0.1)
        answers = await asyncio.gather(
            *(group.run(bump, {"k": k, "d": 0 if k == 3 else 1}, order=str(k)) for k in range(6)),
            return_exceptions=True,
        )
        await slow
        assert isinstance(answers[3], psycopg.errors.DivisionByZero)
        async with db.transaction() as session:
            stored = (await session.execute(text("SELECT k FROM group_commit_probe"))).all()
        assert sorted(k for (k,) in stored) == [0, 1, 2, 4, 5]
    finally:
        async with db.transaction() as session:
            await session.execute(text("DROP TABLE group_commit_probe"))


async def test_two_batches_that_deadlock_are_answered_write_by_write(db: Database) -> None:
    """Two batches (two replicas' lanes) lock the same two rows in opposite orders: PostgreSQL
    breaks the deadlock by aborting one (SQLSTATE 40P01, a conflict: that batch's own
    failure), whose writes then run alone, after the other batch, and each gets its rows."""
    await _create_probe_table(db)
    lock = Statement("SELECT k AS n FROM group_commit_probe WHERE k = %(n)s FOR UPDATE")
    try:
        async with db.transaction() as session:
            await session.execute(text("INSERT INTO group_commit_probe VALUES (1), (2)"))
        replicas = [_group(db), _group(db)]
        counter = StatementCounter(db.engine)
        slow = [
            asyncio.ensure_future(group.run(WRITE, _params(0, sleep=0.3), order="0"))
            for group in replicas
        ]
        await asyncio.sleep(0.1)  # both lanes busy: the writes below queue into two batches
        batches = [
            [(lock, {"n": first}), (WRITE, _params(0, sleep=0.2)), (lock, {"n": second})]
            for first, second in ((1, 2), (2, 1))
        ]
        answers = await asyncio.gather(
            *(
                group.run(statement, params, order=str(i))
                for group, batch in zip(replicas, batches, strict=True)
                for i, (statement, params) in enumerate(batch)
            ),
            return_exceptions=True,
        )
        await asyncio.gather(*slow)
        counter.close()
        got = [a if isinstance(a, BaseException) else a[0]["n"] for a in answers]
        assert got == [1, 0, 2, 2, 0, 1]
        # The slow writes, the two batches, then the aborted batch's three writes alone.
        assert counter.identity_count == 2 + 2 + 3
    finally:
        async with db.transaction() as session:
            await session.execute(text("DROP TABLE group_commit_probe"))


async def _create_probe_table(db: Database) -> None:
    async with db.transaction() as session:
        await session.execute(text("DROP TABLE IF EXISTS group_commit_probe"))
        await session.execute(text("CREATE TABLE group_commit_probe (k int PRIMARY KEY)"))


class _HeldDatabase:
    """A stand-in for `Database` whose round trips finish when the test says: the one way to
    make two lanes free up in the same turn of the event loop, an interleaving a real server
    produces under load but not on demand. It records every message it is sent."""

    def __init__(self) -> None:
        self.sent: list[list[int]] = []
        self._held: list[asyncio.Future[None]] = []

    async def run_each(self, statements: list[tuple[Statement, Any]], **_: Any) -> list[Rows]:
        self.sent.append([params["n"] for _, params in statements])
        held = asyncio.get_running_loop().create_future()
        self._held.append(held)
        await held
        return [[{"n": params["n"]}] for _, params in statements]

    def release_all(self) -> None:
        for held in self._held:
            if not held.done():
                held.set_result(None)


async def test_a_leader_whose_write_went_in_another_batch_sends_nothing() -> None:
    """Both lanes free up in one turn of the loop and promote two queued writes; the first
    takes the whole queue, the second finds its own write taken. It must send nothing and
    wait for that batch (it once sent empty messages, one round trip after another, until
    the batch came back: 11-20 extra round trips in the HTTP test under a loaded suite)."""
    db = _HeldDatabase()
    group = GroupCommit(db, role=None, operation="test:group", lanes=2)  # type: ignore[arg-type]
    leaders = [asyncio.ensure_future(group.run(WRITE, _params(-k), order="0")) for k in (1, 2)]
    await asyncio.sleep(0)
    queued = [asyncio.ensure_future(group.run(WRITE, _params(n), order="1")) for n in range(10)]
    await eventually(lambda: group.queued == 10, what="ten writes behind two lanes")
    db.release_all()  # both lanes' round trips come back in the same turn
    await asyncio.gather(*leaders)
    await eventually(lambda: len(db.sent) >= 3, what="the queued writes' batch")
    db.release_all()
    results = await asyncio.wait_for(asyncio.gather(*queued), timeout=5)
    assert [rows[0]["n"] for rows in results] == list(range(10))
    assert db.sent == [[-1], [-2], list(range(10))]


async def test_a_waiter_cancelled_after_its_answer_frees_no_lane() -> None:
    """A queued write is answered by another request's batch, and its own request is cancelled
    before it wakes up (a client gone at that moment): it never led, so it frees no lane. (It
    once freed one, and from then on one lane more than configured was sent at once.)"""
    db = _HeldDatabase()
    group = GroupCommit(db, role=None, operation="test:group", lanes=1)  # type: ignore[arg-type]
    first = asyncio.ensure_future(group.run(WRITE, _params(0), order="0"))
    await asyncio.sleep(0)
    leader, waiter = (
        asyncio.ensure_future(group.run(WRITE, _params(n), order=str(n))) for n in (1, 2)
    )
    await eventually(lambda: group.queued == 2, what="two writes behind the lane")
    db.release_all()
    await first
    await eventually(lambda: db.sent[1:] == [[1, 2]], what="the two writes' batch")
    db.release_all()
    # The batch's answer reaches the waiter in the leader's next step; the cancel lands after
    # it, before the waiter wakes.
    asyncio.get_running_loop().call_soon(waiter.cancel)
    await leader
    with pytest.raises(asyncio.CancelledError):
        await waiter
    # One lane: of two new writes, one is sent and the other waits for it.
    later = [asyncio.ensure_future(group.run(WRITE, _params(n), order=str(n))) for n in (3, 4)]
    await eventually(lambda: len(db.sent) >= 3, what="the next write")
    await asyncio.sleep(0.05)
    assert db.sent[2:] == [[3]]
    db.release_all()
    await eventually(lambda: len(db.sent) >= 4, what="the write after it")
    db.release_all()
    assert [rows[0]["n"] for rows in await asyncio.gather(*later)] == [3, 4]


async def test_a_waiter_cancelled_as_it_is_promoted_passes_the_lead_on() -> None:
    """The lane frees up and promotes a queued write whose request is cancelled before it
    wakes: the lead goes to the next one, and the queue does not stall. (The cancelled
    request's write is still sent: it was accepted, and a callback is idempotent.)"""
    db = _HeldDatabase()
    group = GroupCommit(db, role=None, operation="test:group", lanes=1)  # type: ignore[arg-type]
    first = asyncio.ensure_future(group.run(WRITE, _params(0), order="0"))
    await asyncio.sleep(0)
    promoted, next_one = (
        asyncio.ensure_future(group.run(WRITE, _params(n), order=str(n))) for n in (1, 2)
    )
    await eventually(lambda: group.queued == 2, what="two writes behind the lane")
    db.release_all()
    asyncio.get_running_loop().call_soon(promoted.cancel)  # after the promotion, before it wakes
    await first
    with pytest.raises(asyncio.CancelledError):
        await promoted
    await eventually(lambda: len(db.sent) >= 2, what="the next leader's batch")
    db.release_all()
    assert (await asyncio.wait_for(next_one, timeout=5))[0]["n"] == 2
    assert db.sent == [[0], [1, 2]]


async def test_the_database_failing_is_every_writes_answer_and_nothing_stalls(
    proxy: TcpProxy,  # noqa: F811
    pg_database_url: str,
) -> None:
    db = Database(base_settings(database_url=proxy.url_for(pg_database_url)))
    try:
        group = _group(db)
        await group.run(WRITE, _params(0), order="a")  # a pooled connection, through the proxy
        slow = asyncio.ensure_future(group.run(WRITE, _params(-1, sleep=1.0), order="0"))
        await asyncio.sleep(0.2)
        counter = StatementCounter(db.engine)
        queued = asyncio.gather(
            *(group.run(WRITE, _params(n), order=str(n)) for n in range(8)),
            return_exceptions=True,
        )
        await asyncio.sleep(0.1)
        with proxy.resetting():
            answers = await asyncio.wait_for(queued, timeout=20)
            with pytest.raises(DatabaseUnavailable):
                await slow
        counter.close()
        assert all(isinstance(answer, DatabaseUnavailable) for answer in answers), answers
        assert counter.identity_count == 1  # one attempt for the 8, not one each
        # The lane is free again: the next write goes through.
        rows = await asyncio.wait_for(group.run(WRITE, _params(9), order="b"), timeout=20)
        assert rows[0]["n"] == 9
    finally:
        await db.dispose()


async def test_a_cancelled_leader_leaves_no_write_unanswered(db: Database) -> None:
    """The request leading a batch is cut off while the batch is on the wire: its batch's
    other writes are told the outcome is unknown (503: retry), and writes queued later get a
    leader of their own."""
    group = _group(db)
    first = asyncio.ensure_future(group.run(WRITE, _params(-1, sleep=0.3), order="0"))
    await asyncio.sleep(0.1)
    leader = asyncio.ensure_future(group.run(WRITE, _params(-2, sleep=0.6), order="1"))
    mates = asyncio.gather(
        *(group.run(WRITE, _params(n), order=f"2{n}") for n in range(3)), return_exceptions=True
    )
    await first
    await asyncio.sleep(0.05)  # the leader's batch (it and its three mates) is on the wire
    later = asyncio.gather(*(group.run(WRITE, _params(n), order=f"3{n}") for n in range(3)))
    await asyncio.sleep(0.1)
    leader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leader
    answers = await asyncio.wait_for(mates, timeout=10)
    assert all(isinstance(answer, DatabaseUnavailable) for answer in answers), answers
    results = await asyncio.wait_for(later, timeout=10)
    assert [rows[0]["n"] for rows in results] == list(range(3))


async def test_a_flood_beyond_the_queue_is_shed(db: Database) -> None:
    group = GroupCommit(db, role=None, operation="test:group", lanes=1, max_queued=4)
    answers = await _behind_a_slow_write(group, [_params(n) for n in range(8)])
    shed = [a for a in answers if isinstance(a, DatabaseUnavailable)]
    served = [a for a in answers if isinstance(a, list)]
    assert len(shed) == 4
    assert len(served) == 5
    assert all(a.extra["reason"] == "saturated" for a in shed)


async def test_concurrent_callbacks_share_commits_and_each_is_stored_once(
    service: RunningService,
) -> None:
    """Through HTTP: 40 distinct callbacks and 10 repeats of them, at once, to one session
    whose row another transaction holds locked: the first writes wait on the lock with every
    lane, the rest queue, and once the lock goes they share a few round trips. Every answer
    says what one alone would have said, and the inbox holds each event once."""
    live = await start_quiet(service)
    row_id = live.callback_path.split("/")[4]
    bodies = [
        json.dumps(
            {
                "event_type": "application.probe_event",
                "conversation_id": live.conversation_id,
                "properties": {"n": n},
            }
        )
        for n in range(40)
    ]
    writes = service.state.conversations.repository.callback_writes
    trips_before = _apply_round_trips()
    async with service.db.transaction() as session:
        await session.execute(
            text("SELECT 1 FROM mentor_conversations WHERE id = :id FOR UPDATE"), {"id": row_id}
        )
        sent = asyncio.gather(
            *(service.client.post(live.callback_path, content=b) for b in bodies + bodies[:10])
        )
        await eventually(
            lambda: writes.queued == 50 - writes.lanes, what="the callbacks behind the lock"
        )
    answers = await sent
    assert [a.status_code for a in answers] == [200] * 50, [a.text for a in answers]
    # Which of two equal bodies came first is the race's; that one of them is a duplicate is not.
    assert sorted(a.json()["status"] for a in answers) == ["duplicate"] * 10 + ["ignored"] * 40
    async with service.db.transaction() as session:
        stored = await session.scalar(
            text(
                "SELECT count(*) FROM tavus_callback_events "
                "WHERE mentor_conversation_id = :id AND event_type = 'application.probe_event'"
            ),
            {"id": row_id},
        )
    assert stored == 40
    # One round trip for each lane's first write, then the 46 queued in batches of up to 32.
    assert _apply_round_trips() - trips_before <= 2 * writes.lanes
