"""Database round trips on the hot paths, counted on PostgreSQL (the production database)."""

from __future__ import annotations

import pytest

from facetoface.db import StatementCounter
from facetoface.sessions.repository import SessionRepository
from tests.conftest import RunningService
from tests.support.factories import create_persona, create_user

pytestmark = pytest.mark.parametrize("database_settings", ["postgresql"], indirect=True)


async def test_context_loads_in_one_statement(service: RunningService) -> None:
    user_id = await create_user(service.db)
    persona = await create_persona(service.db, user_id)
    counter = StatementCounter(service.db.engine)
    try:
        async with service.db.transaction() as session:
            data = await SessionRepository(session).load_start_data(user_id, persona)
    finally:
        counter.close()

    assert counter.count == 1, counter.statements
    assert data.profile is not None
    assert data.profile["full_name"] == "Maria Silva"
    assert data.onboarding is not None
    assert data.onboarding["disc_type"] == "I"
    assert data.ritual is not None
    assert data.ritual["focus_area"] == "Managing work stress"
    assert {c["category"] for c in data.emotional_categories} == {
        "stress_management",
        "work_life_balance",
    }
    assert {g["goal_text"] for g in data.goals} == {
        "Meditate 10 minutes every morning",
        "Set boundaries with my manager",
    }
    assert data.persona is not None
    assert data.persona.id == persona


async def test_start_costs_three_statements_and_end_two(service: RunningService) -> None:
    user_id = await create_user(service.db)
    headers = service.auth(user_id)
    # Callbacks would hit the same engine while we count: this test measures start and end.
    service.sim.set_config(callback_drop_probability=1.0)
    # Warm the pool so connection set-up queries are not counted.
    await service.client.get("/v1/sessions/00000000-0000-0000-0000-000000000000", headers=headers)

    counter = StatementCounter(service.db.engine)
    try:
        started = await service.client.post("/v1/sessions", headers=headers)
        start_count = counter.count
        counter.reset()
        ended = await service.client.post(
            f"/v1/sessions/{started.json()['id']}/end", headers=headers
        )
        end_count = counter.count
    finally:
        counter.close()

    assert started.status_code == 201
    assert ended.status_code == 200
    assert start_count == 3, counter.statements
    assert end_count == 2
