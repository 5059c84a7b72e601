"""Abuse limits: per-user start rate, anonymous users, body sizes, CORS allow-list."""

from __future__ import annotations

from typing import Any

import pytest

from facetoface.models import MentorConversation
from tests.conftest import RunningService
from tests.support.factories import count_rows, create_user


@pytest.fixture
def service_overrides() -> dict[str, Any]:
    return {
        "session_start_limit": 3,
        "session_start_limit_window_seconds": 600,
        "cors_allowed_origins": ["https://app.example.com"],
    }


async def test_start_rate_limit_is_429_with_retry_after(service: RunningService) -> None:
    user_id = await create_user(service.db)
    headers = service.auth(user_id)
    for _ in range(3):
        started = await service.client.post("/v1/sessions", headers=headers)
        assert started.status_code == 201
        await service.client.post(f"/v1/sessions/{started.json()['id']}/end", headers=headers)

    limited = await service.client.post("/v1/sessions", headers=headers)

    assert limited.status_code == 429
    assert limited.json()["code"] == "rate_limited"
    assert 0 < int(limited.headers["retry-after"]) <= 600
    assert service.sim.conversations()["create_requests"] == 3
    # Another user is not affected.
    other = await create_user(service.db)
    assert (
        await service.client.post("/v1/sessions", headers=service.auth(other))
    ).status_code == 201


async def test_anonymous_users_cannot_start_billable_sessions(service: RunningService) -> None:
    user_id = await create_user(service.db)
    token = service.token(user_id, is_anonymous=True)
    response = await service.client.post(
        "/v1/sessions", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 403
    assert response.json()["code"] == "anonymous_not_allowed"
    assert await count_rows(service.db, MentorConversation) == 0
    # They may still read their (empty) history.
    listed = await service.client.get("/v1/sessions", headers={"Authorization": f"Bearer {token}"})
    assert listed.status_code == 200


@pytest.mark.parametrize(
    ("path", "size", "status"),
    [
        ("/v1/sessions", 70 * 1024, 413),
        ("/v1/sessions", 10 * 1024, 422),  # within the limit: the schema refuses it
    ],
)
async def test_request_bodies_are_capped(
    service: RunningService, path: str, size: int, status: int
) -> None:
    user_id = await create_user(service.db)
    body = b'{"mentor_id": "' + b"x" * size + b'"}'
    response = await service.client.post(
        path, content=body, headers={**service.auth(user_id), "content-type": "application/json"}
    )
    assert response.status_code == status
    if status == 413:
        assert response.json()["code"] == "payload_too_large"
        assert response.json()["request_id"] == response.headers["x-request-id"]


async def test_chunked_bodies_are_capped_too(service: RunningService) -> None:
    user_id = await create_user(service.db)

    async def chunks() -> Any:
        for _ in range(100):
            yield b"x" * 1024

    response = await service.client.post(
        "/v1/sessions",
        content=chunks(),
        headers={**service.auth(user_id), "content-type": "application/json"},
    )
    assert response.status_code == 413


async def test_cors_allows_only_the_configured_origins(service: RunningService) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,idempotency-key",
    }
    allowed = await service.client.options(
        "/v1/sessions", headers={"Origin": "https://app.example.com", **preflight}
    )
    denied = await service.client.options(
        "/v1/sessions", headers={"Origin": "https://evil.example.net", **preflight}
    )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "access-control-allow-credentials" not in allowed.headers
    assert "access-control-allow-origin" not in denied.headers
