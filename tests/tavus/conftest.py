"""Fixtures for the Tavus client tests: httpx.MockTransport only, no network, no real backoff."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, Protocol

import httpx
import pytest
import stamina

from facetoface.tavus import TavusClient

BASE_URL = "https://tavus.test/v2"
API_KEY = "tvsk_unit_test_key_0123456789abcdef"

Handler = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]


class MakeClient(Protocol):
    def __call__(self, handler: Handler, **kwargs: Any) -> TavusClient: ...


@pytest.fixture(autouse=True)
def _stamina_testing() -> Iterator[None]:
    """No backoff sleeps; the client's own `retry_attempts` still applies (cap=True)."""
    with stamina.set_testing(True, attempts=100, cap=True):
        yield


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    clients: list[TavusClient] = []

    def make(handler: Handler, **kwargs: Any) -> TavusClient:
        kwargs.setdefault("transport", httpx.MockTransport(handler))
        client = TavusClient(BASE_URL, API_KEY, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


class Recorder:
    """A MockTransport handler that answers from a script and records every request."""

    def __init__(self, *answers: httpx.Response | Exception | Callable[..., Any]) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            answer = await answer(request)
        assert isinstance(answer, httpx.Response)
        return answer

    @property
    def count(self) -> int:
        return len(self.requests)


@pytest.fixture
def script() -> type[Recorder]:
    """`script(answer, ...)` builds a recording handler; the last answer repeats."""
    return Recorder


@pytest.fixture
def api_key() -> str:
    """The key every `make_client` client sends."""
    return API_KEY
