"""Fixtures for the Tavus simulator tests: one simulator and one callback receiver per session,
both real HTTP servers on 127.0.0.1, reset before every test."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tavus_sim import SimConfig, SimServer
from tavus_sim.server import BackgroundServer
from tests.tavus_sim.tool_support import ToolReceiver

CONTEXT = (
    "Name: Ana Souza\n"
    "Language: english\n"
    "Active Goals: Run a 5k by June; Sleep before 23:00\n"
    "Emotional Focus Areas: anxiety, self-confidence"
)


class Receiver:
    """A callback endpoint that records every POST it gets (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._received: list[dict[str, Any]] = []
        self.fail_next = 0
        """Answer 500 to this many upcoming requests (to exercise retries)."""
        self.server = BackgroundServer(
            Starlette(routes=[Route("/cb/{token}", self._handle, methods=["POST"])])
        )

    async def _handle(self, request: Request) -> Response:
        payload = await request.json()
        with self._lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                return JSONResponse({"error": "try again"}, status_code=500)
            self._received.append({"token": request.path_params["token"], "payload": payload})
        return JSONResponse({"ok": True})

    def url(self, token: str = "session-token") -> str:  # noqa: S107 - a path segment
        """A callback URL on this receiver."""
        return f"{self.server.base_url}/cb/{token}"

    def clear(self) -> None:
        """Forget everything received; stop failing."""
        with self._lock:
            self._received.clear()
            self.fail_next = 0

    def payloads(self, conversation_id: str | None = None) -> list[dict[str, Any]]:
        """Return the payloads received so far, optionally for one conversation."""
        with self._lock:
            items = [entry["payload"] for entry in self._received]
        if conversation_id is None:
            return items
        return [item for item in items if item.get("conversation_id") == conversation_id]

    def event_types(self, conversation_id: str) -> list[str]:
        """Return the event types received for a conversation, in arrival order."""
        return [item["event_type"] for item in self.payloads(conversation_id)]

    def arrived(self, conversation_id: str, count: int = 1) -> list[str] | None:
        """The event types of a conversation once at least ``count`` arrived, else None (a
        check for ``eventually_blocking``)."""
        types = self.event_types(conversation_id)
        return types if len(types) >= count else None

    def has(self, conversation_id: str, event_type: str) -> list[str] | None:
        """The event types of a conversation once ``event_type`` is among them, else None."""
        types = self.event_types(conversation_id)
        return types if event_type in types else None


@pytest.fixture(scope="session")
def sim() -> Iterator[SimServer]:
    """The simulator, with quick replica joins and retries."""
    config = SimConfig(replica_join_delay_ms=10, callback_backoff_s=0.01)
    with SimServer(config) as server:
        yield server


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    """The callback receiver."""
    instance = Receiver()
    with instance.server:
        yield instance


@pytest.fixture(autouse=True)
def _clean(sim: SimServer, receiver: Receiver) -> None:
    sim.reset()
    receiver.clear()


@pytest.fixture(scope="session")
def api(sim: SimServer) -> Iterator[httpx.Client]:
    """An httpx client for the simulated Tavus API, authenticated (shared: clients are slow
    to build because of their TLS context)."""
    with httpx.Client(
        base_url=sim.api_url, headers={"x-api-key": sim.api_key}, timeout=5.0
    ) as client:
        yield client


@pytest.fixture(scope="session")
def http() -> Iterator[httpx.Client]:
    """A plain shared httpx client, for calls that need full URLs or no API key."""
    with httpx.Client(timeout=5.0) as client:
        yield client


CreateFn = Callable[..., dict[str, Any]]


@pytest.fixture
def create(api: httpx.Client) -> CreateFn:
    """Return a function that creates a conversation (replica ``r1`` unless given) and
    returns the 200 body."""

    def _create(**fields: Any) -> dict[str, Any]:
        response = api.post("/conversations", json={"replica_id": "r1", **fields})
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    return _create


@pytest.fixture
def mentor_context() -> str:
    """A conversational context in the service's labelled-lines style."""
    return CONTEXT


@pytest.fixture(scope="session")
def tool_receiver() -> Iterator[ToolReceiver]:
    """A tool endpoint that checks signatures (tool_support.py)."""
    instance = ToolReceiver()
    with instance.server:
        yield instance


@pytest.fixture
def tools(tool_receiver: ToolReceiver) -> ToolReceiver:
    """The tool endpoint, emptied for this test."""
    tool_receiver.clear()
    return tool_receiver
