"""Two `serve` processes on one PostgreSQL: concurrent starts for the same users through both
(with and without idempotency keys), a callback storm through both, ends through both. Real
processes: the point is two servers working at once, on both cores (tests/support/replicas.py).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import RunningService
from tests.reliability.test_fault_injection import REPORT
from tests.support.checker import History, callback_body, check
from tests.support.factories import create_user
from tests.support.replicas import replica_auth, serve_replicas

pytestmark = pytest.mark.e2e

JSON = {"content-type": "application/json"}


@pytest.fixture
async def replicas(
    service: RunningService, tmp_path: Path
) -> AsyncIterator[list[httpx.AsyncClient]]:
    """Two more `serve` processes beside the test's own, sharing its database and Tavus."""
    async with serve_replicas(
        2, database_url=service.settings.database_url, sim=service.sim, log_dir=tmp_path
    ) as running:
        yield [replica.client for replica in running]


async def test_two_replicas_keep_every_invariant(
    service: RunningService, replicas: list[httpx.AsyncClient]
) -> None:
    started = time.monotonic()
    service.sim.set_config(callback_drop_probability=1.0, latency_ms=50)
    users = [await create_user(service.db) for _ in range(10)]
    history = History()
    owner: dict[str, uuid.UUID] = {}

    async def starts(user_id: uuid.UUID) -> None:
        key = str(uuid.uuid4())
        attempts = [
            replicas[i % 2].post(
                "/v1/sessions", headers=replica_auth(user_id, key if i < 4 else None)
            )
            for i in range(8)
        ]
        for response in await asyncio.gather(*attempts):
            history.start_statuses[response.status_code] += 1
            assert response.status_code in {201, 409}, response.text
            if response.status_code == 201 and "idempotent-replayed" not in response.headers:
                history.starts.append(response.json())
                owner[response.json()["id"]] = user_id

    await asyncio.gather(*(starts(u) for u in users))
    assert len(history.starts) == len(users), "one session per user, whatever the replica"

    conversations = {c["conversation_id"]: c for c in service.sim.conversations()["conversations"]}
    bodies = []
    for body in history.starts:
        cid = body["conversation_id"]
        path = conversations[cid]["callback_url"].split("/", 3)[3]
        row = uuid.UUID(body["mentor_conversation_id"])
        for event_type, props in [
            ("system.replica_joined", {}),
            ("application.perception_analysis", {"analysis": "fine"}),
        ]:
            bodies.append((row, "/" + path, callback_body(cid, event_type, **props)))
    storm = [
        (row, raw, replicas[i % 2].post(path, content=raw, headers=JSON))
        for i, (row, path, raw) in enumerate(bodies * 4)
    ]
    responses = await asyncio.gather(*(request for _, _, request in storm))
    for (row, raw, _), response in zip(storm, responses, strict=True):
        history.other_statuses[response.status_code] += 1
        assert response.status_code == 200, response.text
        history.callbacks.append((row, raw))
    outcomes = Counter(r.json()["status"] for r in responses)
    assert outcomes["applied"] == len(bodies)
    assert outcomes["duplicate"] == len(bodies) * 3

    ends = await asyncio.gather(
        *(
            replicas[i % 2].post(
                f"/v1/sessions/{body['id']}/end", headers=replica_auth(owner[body["id"]])
            )
            for i, body in enumerate(history.starts * 2)
        )
    )
    for response in ends:
        history.other_statuses[response.status_code] += 1
        assert response.status_code == 200, response.text
    await service.reconciler.run_once()

    result = await check(service.db, service.sim, history, service.name_prefix)
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    with REPORT.open("a") as report:
        report.write(
            json.dumps(
                {
                    "scenario": "two_replicas",
                    "operations": history.operations(),
                    "callbacks_acknowledged": len(history.callbacks),
                    "seconds": round(time.monotonic() - started, 2),
                    "start_statuses": dict(history.start_statuses),
                    **result.__dict__,
                }
            )
            + "\n"
        )
    assert result.ok, result
    assert result.conversations_at_tavus == len(users)
    assert result.statuses == {"ended": len(users)}
