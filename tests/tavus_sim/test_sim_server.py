"""SimServer lifecycle, the control API and the in-process app."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tavus_sim import SimConfig, SimServer, create_sim_app
from tavus_sim.faults import ConnectionDropped, FaultRule


def test_sim_server_starts_and_stops_fast(http: httpx.Client) -> None:
    started = time.monotonic()
    with SimServer(SimConfig(api_key="k2", conversation_url_base="https://sim.example")) as sim:
        ready = time.monotonic()
        assert sim.api_url == f"{sim.base_url}/v2"
        assert sim.base_url.startswith("http://127.0.0.1:")
        response = http.post(
            f"{sim.api_url}/conversations", headers={"x-api-key": "k2"}, json={"replica_id": "r"}
        )
        url = response.json()["conversation_url"]
        stopping = time.monotonic()
    stopped = time.monotonic()

    assert url.startswith("https://sim.example/rooms/c")
    assert ready - started < 1.0
    assert stopped - stopping < 1.0


def test_stop_does_not_wait_for_a_hanging_fault(http: httpx.Client) -> None:
    sim = SimServer().start()
    sim.add_fault("timeout", endpoint="get", delay_s=60)
    with pytest.raises(httpx.ReadTimeout):
        http.get(f"{sim.api_url}/conversations/c1", headers={"x-api-key": "sim-key"}, timeout=0.1)

    started = time.monotonic()
    sim.stop()

    assert time.monotonic() - started < 1.0


def test_set_config_validates_and_reset_restores(sim: SimServer) -> None:
    assert sim.set_config(latency_ms=5, callback_duplicate=2)["latency_ms"] == 5

    for bad in ({"latency_ms": -1}, {"no_such_field": 1}):
        with pytest.raises(httpx.HTTPStatusError) as raised:
            sim.set_config(**bad)
        assert raised.value.response.status_code == 422

    sim.reset()
    assert sim.get_config() == sim.config.model_dump()


def test_control_overview_counts(sim: SimServer, create: Any, api: httpx.Client) -> None:
    first = create()["conversation_id"]
    create()
    api.post(f"/conversations/{first}/end")
    api.delete(f"/conversations/{first}")

    overview = sim.conversations()

    assert overview["created_total"] == 2
    assert overview["active"] == 1
    assert {c["status"] for c in overview["conversations"]} == {"deleted", "active"}
    assert len(overview["creates"]) == 2


def test_reset_forgets_everything(sim: SimServer, create: Any) -> None:
    create()
    sim.add_fault("status")

    sim.reset()

    assert sim.conversations()["conversations"] == []
    assert sim.conversations()["created_total"] == 0
    assert sim.faults() == []


async def test_drop_connection_outside_uvicorn_raises() -> None:
    app = create_sim_app()
    app.state.sim.faults.add(FaultRule(kind="drop_connection"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        with pytest.raises(ConnectionDropped):
            await client.get("/v2/conversations", headers={"x-api-key": "sim-key"})
