"""Bounded work per request (issue 10 §5): whatever a user stored — the `authenticated` role
may insert any number of goals of any length — the start's context load caps rows and lengths
in SQL, so only a bounded amount of it ever crosses the wire and no one else waits.

The service reaches PostgreSQL through the test TCP proxy, which counts the bytes the database
sends back.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from sqlalchemy import text

from tests.conftest import RunningService
from tests.support.eventually import eventually
from tests.support.factories import create_user
from tests.support.tcp_proxy import TcpProxy

GOALS = 200
GOAL_CHARS = 200_000  # 200 goals of 200 kB each, and as long a SMART version of each
#: What one context load may bring back, whatever the user stored: the capped rows (a few
#: times the mentor's 5 goals and 8 focus areas) of capped lengths, and the profile.
WIRE_BUDGET_BYTES = 150_000


@pytest.fixture
def service_overrides(proxy: TcpProxy, pg_database_url: str) -> dict[str, Any]:
    return {"database_url_through": proxy.url_for(pg_database_url)}


async def test_huge_user_data_costs_a_bounded_context_load(
    service: RunningService, proxy: TcpProxy
) -> None:
    user_id = await create_user(service.db)
    async with service.db.transaction() as session:
        await session.execute(
            text(
                "INSERT INTO user_goals (id, user_id, goal_text, smart_goal, status) "
                "SELECT gen_random_uuid(), :user_id, n || repeat('g', :chars), "
                "repeat('s', :chars), 'active' FROM generate_series(1, :goals) AS n"
            ),
            {"user_id": user_id, "chars": GOAL_CHARS, "goals": GOALS},
        )
    headers = service.auth(user_id)

    async def healthz_latency() -> float:
        # Once the context load's query is on its way to the database:
        await eventually(lambda: proxy.stats().bytes_up > sent, what="the context query sent")
        started = time.monotonic()
        assert (await service.client.get("/healthz")).status_code == 200
        return time.monotonic() - started

    before, sent = proxy.stats().bytes_down, proxy.stats().bytes_up
    started = time.monotonic()
    preview, healthz = await asyncio.gather(
        service.client.get("/v1/me/context", headers=headers), healthz_latency()
    )
    preview_s = time.monotonic() - started
    preview_bytes = proxy.stats().bytes_down - before
    before = proxy.stats().bytes_down
    session = await service.client.post("/v1/sessions", headers=headers)
    start_bytes = proxy.stats().bytes_down - before

    assert preview.status_code == 200, preview.text
    assert len(preview.json()["text"]) <= service.settings.context_max_chars
    assert session.status_code == 201, session.text
    [created] = [
        c
        for c in service.sim.conversations()["conversations"]
        if c["conversation_id"] == session.json()["conversation_id"]
    ]
    assert len(created["conversational_context"]) <= service.settings.context_max_chars
    stored = GOALS * GOAL_CHARS * 2
    assert preview_bytes < WIRE_BUDGET_BYTES, f"{preview_bytes} bytes of {stored} came back"
    assert start_bytes < WIRE_BUDGET_BYTES, f"{start_bytes} bytes of {stored} came back"
    assert preview_s < 2.0, f"the context load took {preview_s:.2f} s"
    assert healthz < 0.5, f"/healthz waited {healthz:.2f} s behind the context load"


async def test_a_users_data_is_not_capped_away_when_small(service: RunningService) -> None:
    """The caps bound the worst case only: an ordinary user's goals all reach the context."""
    user_id = await create_user(service.db)
    marker = f"goal-{uuid.uuid4().hex[:8]}"
    async with service.db.transaction() as session:
        await session.execute(
            text(
                "INSERT INTO user_goals (id, user_id, goal_text, status) "
                "VALUES (gen_random_uuid(), :user_id, :text, 'active')"
            ),
            {"user_id": user_id, "text": marker},
        )
    preview = await service.client.get("/v1/me/context", headers=service.auth(user_id))
    assert preview.status_code == 200, preview.text
    assert marker in preview.json()["text"]
