"""Session helpers shared by integration tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from tests.conftest import RunningService
from tests.support.factories import create_user


@dataclass
class Started:
    session_id: str
    conversation_id: str
    callback_path: str
    user_id: uuid.UUID


async def start_quiet(service: RunningService) -> Started:
    """A started session whose simulator sends no callbacks: the test sends its own, to the
    callback URL the service gave Tavus."""
    service.sim.set_config(callback_drop_probability=1.0)
    user_id = await create_user(service.db)
    response = await service.client.post("/v1/sessions", headers=service.auth(user_id))
    assert response.status_code == 201, response.text
    body = response.json()
    [conversation] = [
        c
        for c in service.sim.conversations()["conversations"]
        if c["conversation_id"] == body["conversation_id"]
    ]
    path = conversation["callback_url"].removeprefix(service.url)
    return Started(body["id"], body["conversation_id"], path, user_id)


#: Settings under which one reconciler pass acts on everything at once (no grace periods) and
#: Tavus timeouts are short, for tests that run passes themselves.
EAGER_RECONCILER: dict[str, float] = {
    "reconcile_starting_grace_seconds": 0,
    "reconcile_not_created_after_seconds": 0,
    "reconcile_overdue_grace_seconds": 0,
    "reconcile_settle_seconds": 0,
    "reconcile_live_check_seconds": 0,
    "tavus_read_timeout_seconds": 0.8,
    "tavus_total_timeout_seconds": 1.0,
}
