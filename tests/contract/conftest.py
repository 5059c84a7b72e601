"""The contract suite's simulator: a real HTTP server on 127.0.0.1, reset before each test."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tavus_sim import SimConfig, SimServer


@pytest.fixture(scope="session")
def contract_sim() -> Iterator[SimServer]:
    # The contract's callback URLs point nowhere: drop every delivery instead of trying.
    with SimServer(SimConfig(replica_join_delay_ms=10, callback_drop_probability=1.0)) as server:
        yield server


@pytest.fixture
def sim(contract_sim: SimServer) -> Iterator[SimServer]:
    contract_sim.reset()
    yield contract_sim
    contract_sim.reset()


@pytest.fixture
def http(sim: SimServer) -> Iterator[httpx.Client]:
    """A plain client on the simulated Tavus API (the key is passed per request)."""
    with httpx.Client(base_url=sim.api_url, timeout=10) as client:
        yield client
