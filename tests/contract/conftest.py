"""The contract suite's simulator: a real HTTP server on 127.0.0.1, reset before each test."""

from __future__ import annotations

import ssl
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


@pytest.fixture(scope="session")
def tls() -> ssl.SSLContext:
    """One TLS context for every client here: building one reads the CA bundle (0.1 s and
    more on a busy machine), which a client per test would pay every time."""
    return httpx.create_ssl_context()


@pytest.fixture(scope="session")
def _http(contract_sim: SimServer, tls: ssl.SSLContext) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=contract_sim.api_url, timeout=10, verify=tls) as client:
        yield client


@pytest.fixture
def http(sim: SimServer, _http: httpx.Client) -> httpx.Client:
    """A plain client on the simulated Tavus API (the key is passed per request), with the
    simulator reset."""
    return _http
