"""Tavus's timestamps are believed only when they could be true (found by the callback fuzzer:
a shutdown stamped in the year 9999 made the session last ~8,000 years, a duration no column
holds, and the callback was answered 500)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from facetoface.conversations.events import CLOCK_SKEW, OLDEST_EVENT, believable_time
from tests.conftest import RunningService
from tests.support.sessions import start_quiet

RECEIVED = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("stamped", "believed"),
    [
        (None, RECEIVED),
        (RECEIVED - timedelta(seconds=30), RECEIVED - timedelta(seconds=30)),
        (RECEIVED + CLOCK_SKEW, RECEIVED + CLOCK_SKEW),  # Tavus's clock a little ahead
        (RECEIVED + CLOCK_SKEW + timedelta(seconds=1), RECEIVED),
        (RECEIVED - OLDEST_EVENT, RECEIVED - OLDEST_EVENT),
        (RECEIVED - OLDEST_EVENT - timedelta(seconds=1), RECEIVED),
        (datetime(9999, 12, 31, tzinfo=UTC), RECEIVED),
        (datetime(1, 1, 1, tzinfo=UTC), RECEIVED),
    ],
)
def test_a_time_that_cannot_be_true_is_the_time_of_receipt(
    stamped: datetime | None, believed: datetime
) -> None:
    assert believable_time(stamped, RECEIVED) == believed


@pytest.mark.parametrize("stamp", ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", 253402214400])
async def test_a_shutdown_stamped_out_of_reach_ends_the_session_now(
    service: RunningService, stamp: object
) -> None:
    live = await start_quiet(service)
    joined = {
        "event_type": "system.replica_joined",
        "conversation_id": live.conversation_id,
        "timestamp": stamp,
        "properties": {},
    }
    shutdown = {
        "event_type": "system.shutdown",
        "conversation_id": live.conversation_id,
        "timestamp": stamp,
        "properties": {"shutdown_reason": "participant_left"},
    }
    for event in (joined, shutdown):
        response = await service.client.post(live.callback_path, json=event)
        assert response.status_code == 200, response.text
    read = await service.client.get(
        f"/v1/sessions/{live.session_id}", headers=service.auth(live.user_id)
    )
    assert read.status_code == 200, read.text
    session = read.json()
    assert session["status"] in {"completed", "interrupted"}, session  # ended, either way
    # Ended when the shutdown arrived: seconds after the start, not millennia (nor before it).
    assert 0 <= session["duration_seconds"] < 600, session
