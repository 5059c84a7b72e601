"""Readiness: 503 only when this instance cannot serve.

The database does not answer, or its schema is one this code may not run on (behind its
head, or ahead by a revision not marked backward-compatible: `db.compatibility`). Tavus is
reported but never makes the instance unready: the service degrades gracefully (a start answers 503
`tavus_unavailable`, reads keep working), and taking every instance out of the load balancer
would only make that worse.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from facetoface.db import Database
from facetoface.db.compatibility import SERVING
from facetoface.health.tavus import TavusHealth

log = structlog.get_logger(__name__)

_SERVING = frozenset(state.value for state in SERVING)

#: A readiness probe must answer quickly even when the database hangs.
DB_CHECK_TIMEOUT_SECONDS = 3.0


async def readiness(
    db: Database, tavus: TavusHealth | None, *, draining: bool = False
) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body): 503 when the process is draining (SIGTERM), the database is
    unreachable, or its schema is one this code may not serve."""
    if draining:
        # Nothing else is asked: the answer is 503 whatever the database says.
        return 503, {"status": "draining", "checks": {"shutdown": {"status": "draining"}}}
    checks: dict[str, dict[str, Any]] = {}
    try:
        async with asyncio.timeout(DB_CHECK_TIMEOUT_SECONDS):
            verdict = await db.schema_verdict()
    except Exception as exc:  # any failure here means "not ready", with the reason
        log.warning("readyz.database_unreachable", error_type=type(exc).__name__)
        checks["database"] = {"status": "unreachable", "error": type(exc).__name__}
        checks["migrations"] = {"status": "unknown"}
    else:
        checks["database"] = {"status": "ok"}
        # `ahead` serves: a database migrated by a newer release with backward-compatible
        # revisions only (a rolling upgrade, a rollback).
        checks["migrations"] = {
            "status": verdict.state.value,
            "current": verdict.current,
            "head": verdict.head,
        }
    checks["tavus"] = tavus.snapshot() if tavus is not None else {"status": "unknown"}
    if checks["database"]["status"] != "ok" or checks["migrations"]["status"] not in _SERVING:
        status, code = "unavailable", 503
    elif checks["tavus"]["status"] == "degraded":
        status, code = "degraded", 200
    else:
        status, code = "ok", 200
    body: dict[str, Any] = {"status": status}
    body.update({name: check["status"] for name, check in checks.items()})
    body["checks"] = checks
    return code, body
