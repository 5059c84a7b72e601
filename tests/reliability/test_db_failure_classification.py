"""The one classification of database failure and the admission control in front of the pool
(db.py; issue 10 §1, §2), unit by unit: what each failure becomes, and when a call is shed.

The chaos suite (test_chaos_*.py) proves the same end to end over real sockets; these pin the
rules down where a timing-dependent scenario cannot.
"""

from __future__ import annotations

import asyncio
import time

import psycopg
import psycopg.errors
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import exc as sa_exc

from facetoface.app import metric_labels
from facetoface.db import DatabaseUnavailable, recording_tavus_outcome
from facetoface.db.admission import Admission
from facetoface.db.failures import database_unavailable, unavailable_reason
from facetoface.observability.metrics import configure_labels
from tests.support.eventually import eventually


@pytest.fixture(autouse=True)
def _metric_labels() -> None:
    """The label sets the app configures at wiring time (`create_app`): without them every
    reason is counted as `other`, and this module may run before any app was made."""
    configure_labels(metric_labels())


def shed_count() -> float:
    value = REGISTRY.get_sample_value("facetoface_db_unavailable_total", {"reason": "saturated"})
    return value or 0.0


def _Sqlstate(sqlstate: str) -> psycopg.Error:
    """The error psycopg raises for a server error of `sqlstate`."""
    return psycopg.errors.lookup(sqlstate)(f"server said {sqlstate}")


def _wrapped(orig: BaseException) -> sa_exc.DBAPIError:
    return sa_exc.DBAPIError("SELECT 1", {}, orig)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (ConnectionRefusedError(111, "Connection refused"), "refused"),
        (psycopg.OperationalError("connection failed: Connection refused"), "refused"),
        (psycopg.OperationalError("connection timeout expired"), "timeout"),
        (psycopg.OperationalError("server closed the connection unexpectedly"), "connection_lost"),
        (ConnectionResetError(104, "Connection reset by peer"), "connection_lost"),
        (TimeoutError(), "timeout"),
        (sa_exc.TimeoutError("QueuePool limit reached"), "saturated"),
        (_Sqlstate("40001"), "conflict"),
        (_Sqlstate("40P01"), "conflict"),
        (_Sqlstate("57P01"), "shutdown"),
        (_Sqlstate("57P03"), "shutdown"),
        (_Sqlstate("53300"), "saturated"),
        (_Sqlstate("57014"), "timeout"),
        (_Sqlstate("55P03"), "timeout"),
        (_wrapped(_Sqlstate("40001")), "conflict"),
        (_wrapped(ConnectionRefusedError(111, "refused")), "refused"),
    ],
)
def test_every_way_a_connection_fails_has_a_reason(failure: BaseException, reason: str) -> None:
    assert unavailable_reason(failure) == reason


@pytest.mark.parametrize(
    "gone",
    [
        # The pool's checkout out of reconnection attempts (seen under pg_terminate_backend).
        sa_exc.InvalidRequestError("This connection is closed"),
        sa_exc.ResourceClosedError("This Connection is closed"),
        sa_exc.PendingRollbackError(
            "Can't reconnect until invalid transaction is rolled back.  Please rollback() fully "
            "before proceeding"
        ),
    ],
)
def test_a_connection_the_pool_gave_up_on_is_a_lost_connection(gone: BaseException) -> None:
    assert unavailable_reason(gone) == "connection_lost"


def test_misuse_of_the_api_is_not_an_outage() -> None:
    # A bug (an API used wrongly) must stay visible as a 500, not hide behind a 503.
    assert unavailable_reason(sa_exc.InvalidRequestError("no such option 'x'")) is None


def test_a_cause_deep_in_the_chain_is_found() -> None:
    outer = RuntimeError("while checking out")
    outer.__cause__ = ValueError("in between")
    outer.__cause__.__context__ = ConnectionRefusedError(111, "Connection refused")
    assert unavailable_reason(outer) == "refused"


@pytest.mark.parametrize(
    "failure",
    [
        _Sqlstate("23505"),  # unique violation: the one-live-session index's 409
        _Sqlstate("42501"),  # insufficient privilege: a bug (or RLS), never "retry later"
        ValueError("a bug"),
        _Sqlstate("42P01"),  # undefined table: a schema that is not migrated, a bug
    ],
)
def test_what_is_not_an_outage_keeps_its_own_handling(failure: BaseException) -> None:
    assert unavailable_reason(failure) is None


@pytest.mark.parametrize(("reason", "retry_after"), [("saturated", "1"), ("refused", "5")])
def test_the_answer_is_a_503_with_retry_after_and_its_reason(reason: str, retry_after: str) -> None:
    error = database_unavailable(reason)  # type: ignore[arg-type]
    assert isinstance(error, DatabaseUnavailable)
    assert (error.status_code, error.code) == (503, "database_unavailable")
    assert error.headers == {"Retry-After": retry_after}
    assert error.extra == {"reason": reason}


async def test_a_free_slot_is_taken_at_once() -> None:
    admission = Admission(2, wait_seconds=0.05)
    async with admission.slot(), admission.slot():
        assert admission.in_use == 2
    assert admission.in_use == 0


async def test_no_slot_within_the_wait_is_shed_as_saturated() -> None:
    admission = Admission(1, wait_seconds=0.05)
    before = shed_count()
    async with admission.slot():
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable) as shed:
            async with admission.slot():
                pass
        waited = time.monotonic() - started
    assert shed.value.extra == {"reason": "saturated"}
    assert 0.04 <= waited < 0.5
    assert shed_count() == before + 1
    assert (admission.in_use, admission.waiting) == (0, 0)


async def test_a_slot_freed_within_the_wait_is_taken() -> None:
    admission = Admission(1, wait_seconds=1.0)
    order: list[str] = []

    release = asyncio.Event()

    async def holder() -> None:
        async with admission.slot():
            await release.wait()
            order.append("first done")

    async def waiter() -> None:
        async with admission.slot():
            order.append("second ran")

    first = asyncio.create_task(holder())
    await eventually(lambda: admission.in_use == 1, what="the first call holds the slot")
    second = asyncio.create_task(waiter())
    await eventually(lambda: admission.waiting == 1, what="the second call waits for it")
    release.set()
    await asyncio.gather(first, second)
    assert order == ["first done", "second ran"]


async def test_a_full_queue_is_shed_at_once() -> None:
    admission = Admission(1, wait_seconds=5.0)
    release = asyncio.Event()

    async def hold() -> None:
        async with admission.slot():
            await release.wait()

    async def wait_in_queue() -> None:
        async with admission.slot():
            pass

    holder = asyncio.create_task(hold())
    await eventually(lambda: admission.in_use == 1, what="the slot is held")
    queue = [asyncio.create_task(wait_in_queue()) for _ in range(admission.max_waiting)]
    await eventually(lambda: admission.waiting == admission.max_waiting, what="a full queue")
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable):
        async with admission.slot():
            pass
    assert time.monotonic() - started < 0.1, "shed at once, not after the wait"
    release.set()
    await asyncio.gather(holder, *queue)


async def test_recording_a_tavus_outcome_is_never_shed_for_the_queue() -> None:
    """What Tavus already did (a conversation created or ended) is recorded even when new
    work is being shed: it waits for a slot, up to its own bound (the call's deadline)."""
    admission = Admission(1, wait_seconds=0.02, recording_wait_seconds=2.0)
    release = asyncio.Event()

    async def hold() -> None:
        async with admission.slot():
            await release.wait()

    async def wait_in_queue() -> None:
        async with admission.slot():
            await asyncio.sleep(0)

    holder = asyncio.create_task(hold())
    await eventually(lambda: admission.in_use == 1, what="the slot is held")
    queue = [asyncio.create_task(wait_in_queue()) for _ in range(admission.max_waiting)]
    await eventually(lambda: admission.waiting == admission.max_waiting, what="a full queue")

    async def record() -> str:
        with recording_tavus_outcome():
            async with admission.slot():
                return "recorded"

    recording = asyncio.create_task(record())
    # The queue (new work) is shed once its wait is over; the recording, queued after it
    # and beyond the full queue, is still waiting.
    await eventually(lambda: all(task.done() for task in queue), what="the queue was shed")
    await asyncio.sleep(3 * admission.wait_seconds)  # time passing, not an event: still waiting
    assert not recording.done()
    release.set()
    assert await recording == "recorded"
    shed = await asyncio.gather(*queue, return_exceptions=True)
    assert all(isinstance(result, DatabaseUnavailable) for result in shed)
    await holder


async def test_recording_still_gives_up_at_its_own_bound() -> None:
    admission = Admission(1, wait_seconds=0.01, recording_wait_seconds=0.1)
    async with admission.slot():
        started = time.monotonic()
        with recording_tavus_outcome(), pytest.raises(DatabaseUnavailable):
            async with admission.slot():
                pass
        assert 0.09 <= time.monotonic() - started < 1.0
