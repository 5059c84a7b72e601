"""`Server-Timing`: each answer says where its time went — the database slot's wait, the
database round trips, the Tavus attempts, and the whole request in the service."""

from __future__ import annotations

import re

from tests.conftest import RunningService
from tests.support.factories import create_user

_ENTRY = re.compile(r"^(\w+);dur=(\d+\.\d\d)$")


def spans(header: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for entry in header.split(", "):
        match = _ENTRY.match(entry)
        assert match, header
        out[match[1]] = float(match[2])
    return out


async def test_a_start_reports_its_database_and_tavus_time(service: RunningService) -> None:
    user_id = await create_user(service.db)
    response = await service.client.post("/v1/sessions", headers=service.auth(user_id))
    assert response.status_code == 201, response.text
    timing = spans(response.headers["server-timing"])
    # A start makes one Tavus create and two database round trips; each part is within the
    # whole (the simulator answers in-process: its time is counted as Tavus's).
    assert set(timing) >= {"db", "tavus", "app"}, timing
    assert 0 < timing["db"] <= timing["app"]
    assert 0 < timing["tavus"] <= timing["app"]
    assert timing["db"] + timing["tavus"] <= timing["app"] + 0.01


async def test_a_probe_reports_only_its_own_time(service: RunningService) -> None:
    response = await service.client.get("/healthz")
    assert response.status_code == 200
    assert set(spans(response.headers["server-timing"])) == {"app"}
