"""A callback logs one line (issue 20.2: the hottest route logged two — its request's and
`callback.ingested`): what it did rides on the request's `http.request` line. Events fetched
from Tavus, with no request around them, still get a line each."""

from __future__ import annotations

import uuid

from structlog.testing import capture_logs

from tests.conftest import RunningService
from tests.support.sessions import start_quiet


async def test_a_callback_logs_one_line_that_says_what_it_did(service: RunningService) -> None:
    live = await start_quiet(service)
    event = {
        "event_type": "system.replica_joined",
        "conversation_id": live.conversation_id,
        "properties": {},
    }
    with capture_logs() as logs:
        response = await service.client.post(live.callback_path, json=event)
    assert response.status_code == 200, response.text
    assert [line["event"] for line in logs] == ["http.request"], logs
    [line] = logs
    assert line["route"] == "/v1/callbacks/tavus/{mentor_conversation_id}/{token}"
    assert line["event_type"] == "system.replica_joined"
    assert line["callback_outcome"] == "applied"
    assert line["mentor_conversation_id"] == live.callback_path.split("/")[4]

    # Sent again: still one line, saying it was a duplicate.
    with capture_logs() as logs:
        again = await service.client.post(live.callback_path, json=event)
    assert again.json() == {"status": "duplicate"}
    assert [(line["event"], line.get("callback_outcome")) for line in logs] == [
        ("http.request", "duplicate")
    ]


async def test_events_fetched_from_tavus_are_logged_one_line_each(
    service: RunningService,
) -> None:
    live = await start_quiet(service)
    row_id = uuid.UUID(live.callback_path.split("/")[4])
    reported = [
        {"event_type": "system.replica_joined", "properties": {}},
        {"event_type": "system.shutdown", "properties": {"shutdown_reason": "participant_left"}},
    ]
    with capture_logs() as logs:
        counts = await service.state.conversations.ingest_reported(
            row_id, live.conversation_id, reported
        )
    assert counts["applied"] == 2, counts
    ingested = [line for line in logs if line["event"] == "callback.ingested"]
    assert [(line["event_type"], line["source"]) for line in ingested] == [
        ("system.replica_joined", "tavus_fetch"),
        ("system.shutdown", "tavus_fetch"),
    ]
