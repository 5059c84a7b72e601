"""Production hardening at the edge: the request head cap, the metrics token, no API map."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from tests.conftest import RunningService


def _send_huge_head(port: int, total: int) -> tuple[bytes, int]:
    """Send a request whose Authorization header is `total` bytes, in chunks, reading the
    answer as soon as there is one; (the answer, bytes sent before the server closed)."""
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /v1/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ")
        chunk = b"a" * 65536
        try:
            while sent < total:
                sock.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed: the rest was never going to be read
        sock.settimeout(10)
        answer = b""
        try:
            while data := sock.recv(65536):
                answer += data
        except ConnectionResetError:
            pass
    return answer, sent


async def test_a_huge_request_head_is_431_before_it_is_read(service: RunningService) -> None:
    port = int(service.url.rsplit(":", 1)[1])
    total = 64 * 1024 * 1024
    answer, sent = await asyncio.to_thread(_send_huge_head, port, total)

    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b'"code":"request_header_fields_too_large"' in answer
    assert sent < total, "the server read the whole head instead of refusing it"
    # Everyone else is served as before.
    assert (await service.client.get("/healthz")).status_code == 200


async def test_ordinary_heads_pass(service: RunningService) -> None:
    headers = {"X-Padding": "p" * 8000}
    response = await service.client.get("/healthz", headers=headers)
    assert response.status_code == 200


class TestMetricsToken:
    @pytest.fixture
    def service_overrides(self) -> dict[str, Any]:
        return {"metrics_token": "scrape-secret-0123456789"}

    async def test_metrics_need_the_token_when_one_is_set(self, service: RunningService) -> None:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
            refused = await service.client.get("/metrics", headers=headers)
            assert refused.status_code == 401, headers
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert "facetoface_" not in refused.text
        scraped = await service.client.get(
            "/metrics", headers={"Authorization": "Bearer scrape-secret-0123456789"}
        )
        assert scraped.status_code == 200
        assert "facetoface_http_requests_total" in scraped.text


class TestNoApiMap:
    @pytest.fixture
    def service_overrides(self) -> dict[str, Any]:
        return {"openapi_enabled": False}

    async def test_the_openapi_document_is_not_served(self, service: RunningService) -> None:
        for path in ("/openapi.json", "/docs"):
            assert (await service.client.get(path)).status_code == 404, path
