"""`/healthz`, `/readyz` and `/metrics` (none of them in the API's map)."""

from __future__ import annotations

import asyncio
import hmac

import structlog
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import SecretStr

from facetoface.app_state import app_state
from facetoface.errors import NotFound, Unauthorized
from facetoface.health.repository import count_sessions, count_webhook_events
from facetoface.health.service import DB_CHECK_TIMEOUT_SECONDS, readiness
from facetoface.observability.metrics import render_metrics, session_gauges, webhook_gauges

log = structlog.get_logger(__name__)

router = APIRouter(include_in_schema=False)

_ALIVE = b'{"status":"ok"}'


@router.get("/healthz")
async def healthz() -> Response:
    """Liveness: the process answers (nothing else is checked, so a database outage never
    gets every instance restarted)."""
    return Response(_ALIVE, media_type="application/json")


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Database reachable, schema served, Tavus as last seen (JSON, one key per check); 503
    `draining` from SIGTERM on."""
    state = app_state(request)
    code, body = await readiness(state.db, state.tavus_health, draining=state.shutdown.draining)
    return JSONResponse(body, status_code=code)


class MetricsElsewhere(NotFound):
    """`/metrics` has a port of its own (METRICS_PORT): not served on the public one."""


class MetricsTokenRequired(Unauthorized):
    """`/metrics` is protected (METRICS_TOKEN) and the scrape did not present the token."""


def _check_metrics_token(request: Request, expected: SecretStr | None) -> None:
    if expected is None:
        return
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        presented.strip().encode(), expected.get_secret_value().encode()
    ):
        raise MetricsTokenRequired("metrics scrape without the metrics token")


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus exposition; the session gauges are counted in the database now."""
    state = app_state(request)
    port = state.settings.metrics_port
    if port and (request.scope.get("server") or (None, None))[1] != port:
        raise MetricsElsewhere("no such route on this port")
    _check_metrics_token(request, state.settings.metrics_token)
    extra = []
    try:
        async with asyncio.timeout(DB_CHECK_TIMEOUT_SECONDS):
            live, past = await count_sessions(
                state.db, state.settings.session_max_call_duration_seconds
            )
    except Exception as exc:  # the rest of the scrape is still worth having
        log.warning("metrics.session_count_failed", error_type=type(exc).__name__)
    else:
        extra = session_gauges(live, past)
    if state.settings.webhooks_enabled:
        try:
            async with asyncio.timeout(DB_CHECK_TIMEOUT_SECONDS):
                pending, oldest_due, failed = await count_webhook_events(state.db)
        except Exception as exc:
            log.warning("metrics.webhook_count_failed", error_type=type(exc).__name__)
        else:
            extra += webhook_gauges(pending, oldest_due, failed)
    body, content_type = render_metrics(request.headers.get("accept"), extra=extra)
    return Response(body, media_type=content_type)
