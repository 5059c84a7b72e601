"""`/readyz`: database reachable, migrations current, Tavus as last seen.

Here the service is pointed at a Tavus that does not exist (nothing listens on port 9).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text

from facetoface.db.compatibility import SchemaVerdict, judge
from facetoface.health import TavusHealth, readiness
from facetoface.health import service as health
from tests.conftest import RunningService
from tests.support.factories import create_user
from tests.support.tavus_timing import no_backoff


@pytest.fixture
def service_overrides() -> dict[str, Any]:
    return {"tavus_base_url": "http://127.0.0.1:9/v2", "tavus_retry_timeout_seconds": 0.5}


async def test_ready_when_tavus_has_not_been_called(service: RunningService) -> None:
    response = await service.client.get("/readyz")

    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in ("status", "database", "migrations", "tavus")} == {
        "status": "ok",
        "database": "ok",
        "migrations": "ok",
        "tavus": "unknown",
    }
    checks = body["checks"]
    assert checks["database"] == {"status": "ok"}
    assert checks["migrations"]["status"] == "ok"
    assert checks["migrations"]["current"] == checks["migrations"]["head"]
    assert checks["tavus"] == {"status": "unknown"}


async def test_dead_tavus_degrades_readiness_but_keeps_it_200(service: RunningService) -> None:
    user_id = await create_user(service.db)

    with no_backoff():  # nothing answers on port 9: the retries need no pause
        start = await service.client.post("/v1/sessions", headers=service.auth(user_id))

    assert start.status_code == 503
    assert start.json()["code"] == "tavus_unavailable"
    response = await service.client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["database"] == "ok"
    assert body["tavus"] == "degraded"
    tavus = body["checks"]["tavus"]
    assert tavus["last_outcome"] == "unavailable"
    assert tavus["last_endpoint"] == "create_conversation"
    assert tavus["consecutive_failures"] >= 1
    assert tavus["seconds_since_last_call"] >= 0


async def test_unmigrated_database_is_503(service: RunningService) -> None:
    async with service.db.transaction() as session:
        [current] = (await session.execute(text("SELECT version_num FROM alembic_version"))).one()
        await session.execute(text("UPDATE alembic_version SET version_num = 'older'"))
    try:
        response = await service.client.get("/readyz")
    finally:
        async with service.db.transaction() as session:
            await session.execute(
                text("UPDATE alembic_version SET version_num = :v"), {"v": current}
            )

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["database"] == "ok"
    assert body["migrations"] == "unknown"  # newer than this code, and undescribed
    assert body["checks"]["migrations"]["current"] == "older"


class _BrokenDatabase:
    def __init__(self, error: Exception | None = None, delay_s: float = 0) -> None:
        self.error = error
        self.delay_s = delay_s

    async def schema_verdict(self) -> SchemaVerdict:
        await asyncio.sleep(self.delay_s)
        if self.error is not None:
            raise self.error
        return judge("head", "head", {"head"}, {})


async def test_unreachable_database_is_503() -> None:
    db = _BrokenDatabase(error=OSError("connection refused"))
    code, body = await readiness(db, TavusHealth())  # type: ignore[arg-type]

    assert code == 503
    assert body["status"] == "unavailable"
    assert body["database"] == "unreachable"
    assert body["migrations"] == "unknown"
    assert body["checks"]["database"] == {"status": "unreachable", "error": "OSError"}


async def test_hanging_database_is_503_quickly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "DB_CHECK_TIMEOUT_SECONDS", 0.05)
    db = _BrokenDatabase(delay_s=5)

    code, body = await asyncio.wait_for(readiness(db, None), timeout=2)  # type: ignore[arg-type]

    assert code == 503
    assert body["database"] == "unreachable"


def test_tavus_health_follows_the_latest_outcome() -> None:
    tavus = TavusHealth()
    assert tavus.snapshot() == {"status": "unknown"}
    tavus.on_request("create_conversation", "outcome_unknown", 3.0)
    tavus.on_request("end_conversation", "server_error", 0.2)
    assert tavus.snapshot()["status"] == "degraded"
    assert tavus.snapshot()["consecutive_failures"] == 2
    tavus.on_request("end_conversation", "cancelled", 0.1)  # says nothing about Tavus
    assert tavus.snapshot()["last_outcome"] == "server_error"
    tavus.on_request("get_conversation", "not_found", 0.1)  # Tavus answered
    assert tavus.snapshot()["status"] == "ok"
    assert tavus.snapshot()["consecutive_failures"] == 0


async def test_draining_is_503_without_asking_the_database() -> None:
    """From SIGTERM on (facetoface.shutdown): load balancers stop sending, whatever the
    database says (a hanging one would only delay the answer)."""
    db = _BrokenDatabase(delay_s=5)
    code, body = await asyncio.wait_for(readiness(db, None, draining=True), timeout=2)  # type: ignore[arg-type]
    assert code == 503
    assert body["status"] == "draining"
