"""Stopping the reconciler (a replica drains on SIGTERM) mid-pass: the row it is working on is
finished, the rows it claimed and did not reach are released at once — their lease freed and
the claim's attempt given back — so another replica takes them now, not when the lease
(`RECONCILE_LEASE_SECONDS`) runs out."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from facetoface.models import MentorConversation
from tests.conftest import RunningService
from tests.support.eventually import eventually
from tests.support.sessions import EAGER_RECONCILER, given_session


@pytest.fixture
def service_overrides() -> dict[str, Any]:
    # Tavus's slow answer below (2 s) is within the client's patience.
    return {**EAGER_RECONCILER, "tavus_read_timeout_seconds": 5, "tavus_total_timeout_seconds": 6}


async def _leases(service: RunningService, ids: list[Any]) -> dict[Any, tuple[Any, int]]:
    async with service.db.transaction() as session:
        rows = await session.execute(
            select(
                MentorConversation.id,
                MentorConversation.reconcile_lease_until,
                MentorConversation.reconcile_attempts,
            ).where(MentorConversation.id.in_(ids))
        )
        return {row.id: (row.reconcile_lease_until, row.reconcile_attempts) for row in rows}


async def test_a_stopped_pass_finishes_its_row_and_releases_the_others(
    service: RunningService,
) -> None:
    service.sim.set_config(callback_drop_probability=1.0)
    live = [await given_session(service, status="active") for _ in range(3)]
    ids = [s.mentor_conversation_id for s in live]
    # The pass's first Tavus read (one quiet live session's record) answers after 2 s.
    service.sim.add_fault(endpoint="get", kind="timeout", delay_s=2.0, apply_first=True)

    reconciler = service.reconciler
    running = asyncio.create_task(reconciler.run_once())

    async def all_claimed() -> bool:
        return all(until is not None for until, _ in (await _leases(service, ids)).values())

    await eventually(all_claimed, what="the pass to claim the three quiet sessions")
    reconciler.stop()
    report = await running

    leases = await _leases(service, ids)
    released = [row for row, (until, _) in leases.items() if until is None]
    assert len(released) == 2, leases
    assert all(leases[row][1] == 0 for row in released)  # the claim's attempt given back
    assert report.actions["lease_released"] == 2
    (worked,) = set(ids) - set(released)
    assert leases[worked][1] == 1
    # A stopped reconciler claims nothing more.
    assert (await reconciler.run_once()).actions == {}
