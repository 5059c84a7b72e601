"""`/readyz` and `/metrics`, and the "Tavus as last seen" state readiness reports.

Readiness answers 503 only when this instance cannot serve: the database does not answer or
is not migrated to this code's head. Tavus is reported but never makes the instance unready:
the service degrades gracefully (a start answers 503 `tavus_unavailable`, reads keep working),
and taking every instance out of the load balancer would only make that worse.

Tavus's state is not probed (a probe would bill nothing but could hit rate limits and would
say little about creates); it is what this process last saw, from the `TavusClient`
`on_request` hook: `degraded` when the most recent attempt was a transport or server failure
(`unavailable`, `server_error`, `outcome_unknown` — the timeouts), `ok` when Tavus answered
(any other outcome: a 404 or a 429 is Tavus working), `unknown` before the first call.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import SecretStr
from sqlalchemy import case, func, literal_column, select

from facetoface.conversations.status import LIVE_STATUSES
from facetoface.db import Database
from facetoface.errors import Unauthorized
from facetoface.models import MentorConversation, utcnow
from facetoface.observability.metrics import record_tavus_request, render_metrics, session_gauges

__all__ = ["PAST_MAX_GRACE_SECONDS", "TavusHealth", "count_sessions", "readiness", "router"]

log = structlog.get_logger(__name__)

#: Outcomes that say Tavus did not answer properly (what a reachability check would see).
DEGRADED_OUTCOMES = frozenset({"unavailable", "server_error", "outcome_unknown"})
#: Tavus ends a call at `max_call_duration`; a session still live this long after that has
#: lost its shutdown callback (and may still bill): `facetoface_sessions_past_max_duration`.
PAST_MAX_GRACE_SECONDS = 300
#: A readiness probe must answer quickly even when the database hangs.
DB_CHECK_TIMEOUT_SECONDS = 3.0


@dataclass(slots=True)
class _LastSeen:
    endpoint: str
    outcome: str
    at: float  # time.monotonic()


class TavusHealth:
    """Tavus as this process last saw it. `on_request` is the `TavusClient` hook."""

    def __init__(self) -> None:
        self._last: _LastSeen | None = None
        self._consecutive_failures = 0

    def on_request(self, endpoint: str, outcome: str, seconds: float) -> None:
        """Record metrics and remember the outcome (cancelled attempts say nothing)."""
        record_tavus_request(endpoint, outcome, seconds)
        if outcome == "cancelled":
            return
        self._last = _LastSeen(endpoint, outcome, time.monotonic())
        if outcome in DEGRADED_OUTCOMES:
            self._consecutive_failures += 1
        else:
            self._consecutive_failures = 0

    def snapshot(self) -> dict[str, Any]:
        """`{"status": "ok"|"degraded"|"unknown", ...details}` for `/readyz`."""
        last = self._last
        if last is None:
            return {"status": "unknown"}
        return {
            "status": "degraded" if last.outcome in DEGRADED_OUTCOMES else "ok",
            "last_outcome": last.outcome,
            "last_endpoint": last.endpoint,
            "seconds_since_last_call": round(time.monotonic() - last.at, 1),
            "consecutive_failures": self._consecutive_failures,
        }


async def readiness(db: Database, tavus: TavusHealth | None) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body): 503 only when the database is unreachable or not migrated."""
    checks: dict[str, dict[str, Any]] = {}
    try:
        async with asyncio.timeout(DB_CHECK_TIMEOUT_SECONDS):
            current, head = await db.migration_state()
    except Exception as exc:  # any failure here means "not ready", with the reason
        log.warning("readyz.database_unreachable", error_type=type(exc).__name__)
        checks["database"] = {"status": "unreachable", "error": type(exc).__name__}
        checks["migrations"] = {"status": "unknown"}
    else:
        checks["database"] = {"status": "ok", "dialect": db.dialect}
        checks["migrations"] = {
            "status": "ok" if current == head else "behind",
            "current": current,
            "head": head,
        }
    checks["tavus"] = tavus.snapshot() if tavus is not None else {"status": "unknown"}
    if checks["database"]["status"] != "ok" or checks["migrations"]["status"] != "ok":
        status, code = "unavailable", 503
    elif checks["tavus"]["status"] == "degraded":
        status, code = "degraded", 200
    else:
        status, code = "ok", 200
    body: dict[str, Any] = {"status": status}
    body.update({name: check["status"] for name, check in checks.items()})
    body["checks"] = checks
    return code, body


async def count_sessions(db: Database, max_call_duration_seconds: int) -> tuple[int, int]:
    """(live sessions, live sessions started more than max duration + grace ago)."""
    mc = MentorConversation
    cutoff = utcnow() - timedelta(seconds=max_call_duration_seconds + PAST_MAX_GRACE_SECONDS)
    started = func.coalesce(mc.start_time, mc.created_at)
    query = select(
        func.count(),
        func.coalesce(func.sum(case((started < cutoff, 1), else_=0)), 0),
    ).where(
        # Literal values, so PostgreSQL matches the partial index on live rows in every plan.
        mc.status.in_([literal_column(f"'{status.value}'") for status in sorted(LIVE_STATUSES)])
    )
    # As the service's own role: under row-level security the login role reads no table.
    async with db.transaction(role="service") as session:
        live, past = (await session.execute(query)).one()
    return int(live), int(past)


router = APIRouter(include_in_schema=False)


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Database reachable, migrations current, Tavus as last seen (JSON, one key per check)."""
    state = request.app.state
    code, body = await readiness(state.db, getattr(state, "tavus_health", None))
    return JSONResponse(body, status_code=code)


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
    state = request.app.state
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
    body, content_type = render_metrics(request.headers.get("accept"), extra=extra)
    return Response(body, media_type=content_type)
