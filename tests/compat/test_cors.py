"""CORS: supabase-js's preflight passes for allowed origins; development allows any local dev
server; production allows exactly the configured list; errors stay readable cross-origin."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from facetoface.app import create_app
from facetoface.config import Settings
from tests.conftest import RunningService
from tests.support.factories import create_user

#: What a browser asks before `functions.invoke` (supabase-js's headers; order as Chromium).
SUPABASE_JS_PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "apikey,authorization,content-type,x-client-info",
}


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, log_level="WARNING", **values)  # type: ignore[call-arg]


@pytest.fixture(scope="module")
def dev() -> FastAPI:
    return create_app(settings(environment="development"))


@pytest.fixture(scope="module")
def prod() -> FastAPI:
    return create_app(
        settings(environment="production", cors_allowed_origins=["https://app.example.com"])
    )


async def preflight(app: FastAPI, origin: str, path: str) -> httpx.Response:
    # Preflights are answered by the middleware before any route: the app is never started
    # (no database, no lifespan needed).
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.options(path, headers={"Origin": origin, **SUPABASE_JS_PREFLIGHT})


def allowed(response: httpx.Response, origin: str) -> bool:
    return response.status_code == 200 and response.headers.get("access-control-allow-origin") == (
        origin
    )


@pytest.mark.parametrize(
    "path",
    [
        "/functions/v1/start-tavus-session",
        "/functions/v1/end-tavus-session",
        "/functions/v1/tavus-webhook",
        "/v1/sessions",
    ],
)
async def test_development_allows_any_local_dev_server_with_supabase_js_headers(
    dev: FastAPI, path: str
) -> None:
    for origin in ("http://localhost:5173", "http://127.0.0.1:3000", "http://localhost"):
        response = await preflight(dev, origin, path)
        assert allowed(response, origin), (origin, response.text)
        headers = {
            h.strip() for h in response.headers["access-control-allow-headers"].lower().split(",")
        }
        assert {"authorization", "x-client-info", "apikey", "content-type"} <= headers
        assert {"idempotency-key", "x-request-id"} <= headers
        methods = {m.strip() for m in response.headers["access-control-allow-methods"].split(",")}
        assert methods == {"GET", "POST", "PUT", "DELETE", "OPTIONS"}  # PUT: preferences
    for origin in (
        "https://app.example.com",
        "http://localhost.evil.example",
        "http://evil.example/http://localhost:3000",
        "https://localhost:5173",
    ):
        response = await preflight(dev, origin, path)
        assert not allowed(response, origin), origin
        assert "access-control-allow-origin" not in response.headers


async def test_production_allows_exactly_the_configured_origins(prod: FastAPI) -> None:
    path = "/functions/v1/start-tavus-session"

    assert allowed(
        await preflight(prod, "https://app.example.com", path), "https://app.example.com"
    )
    for origin in ("http://localhost:5173", "http://127.0.0.1:3000", "https://evil.example"):
        response = await preflight(prod, origin, path)
        assert response.status_code == 400, origin
        assert "access-control-allow-origin" not in response.headers


async def test_without_configured_origins_outside_development_there_is_no_cors() -> None:
    app = create_app(settings(environment="test"))
    response = await preflight(app, "http://localhost:5173", "/v1/sessions")
    assert "access-control-allow-origin" not in response.headers
    assert response.status_code == 405  # no CORS middleware: an OPTIONS like any other


@pytest.mark.parametrize(
    "service_overrides", [{"cors_allowed_origins": ["https://app.example.com"]}]
)
async def test_answers_and_errors_are_readable_cross_origin_and_apikey_is_ignored(
    service: RunningService,
) -> None:
    user_id = await create_user(service.db)
    origin = {"Origin": "https://app.example.com", "apikey": "anything-at-all"}

    ok = await service.client.post(
        "/functions/v1/start-tavus-session", headers={**origin, **service.auth(user_id)}
    )
    refused = await service.client.post(
        "/functions/v1/start-tavus-session", headers={**origin, "apikey": "x"}
    )

    assert ok.status_code == 200, ok.text
    assert refused.status_code == 401
    for response in (ok, refused):
        assert response.headers["access-control-allow-origin"] == "https://app.example.com"
        exposed = response.headers["access-control-expose-headers"].lower()
        assert "x-request-id" in exposed
        assert "retry-after" in exposed
