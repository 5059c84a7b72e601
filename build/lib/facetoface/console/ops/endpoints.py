"""HTTP routes of the operators' API: `/v1/ops/...`, for operator tokens only (403 for
everyone else, on every route, before anything is read)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from facetoface.app_state import app_state
from facetoface.auth.dependencies import CurrentOperator, require_operator
from facetoface.console.ops.schemas import (
    CallbackOutcomes,
    LiveSessions,
    ReconcilePasses,
    ReconcileResult,
    Stats,
    TavusState,
)
from facetoface.console.ops.service import OpsService
from facetoface.errors import problem
from facetoface.sessions import SessionOut

_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: problem("Missing or invalid access token"),
    403: problem("The token is not an operator's"),
    422: problem("The request does not match the schema"),
    503: problem("A dependency is unavailable; see Retry-After"),
}

router = APIRouter(
    prefix="/v1/ops",
    tags=["ops"],
    dependencies=[Depends(require_operator)],
    responses=_RESPONSES,
)


async def get_ops_service(request: Request) -> OpsService:
    return app_state(request).ops


Service = Annotated[OpsService, Depends(get_ops_service)]


@router.get("/sessions/live", response_model=LiveSessions)
async def live_sessions(service: Service) -> LiveSessions:
    """Every user's live sessions, oldest first, with their age against the call cap."""
    return await service.live_sessions()


@router.post(
    "/sessions/{session_id}/end",
    response_model=SessionOut,
    responses={404: problem("No such session")},
)
async def end_session(
    session_id: uuid.UUID, operator: CurrentOperator, service: Service
) -> SessionOut:
    """End a (stuck) session of any user: at Tavus, then our records; idempotent."""
    return SessionOut.from_row(await service.end_session(operator, session_id))


@router.get("/stats", response_model=Stats)
async def stats(service: Service, days: Annotated[int, Query(ge=1, le=90)] = 14) -> Stats:
    """Sessions per day, the duration distribution and start failures over `days` days."""
    return await service.stats(days)


@router.get("/reconciler/passes", response_model=ReconcilePasses)
async def reconciler_passes(
    service: Service, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> ReconcilePasses:
    """The newest reconciler passes of every replica, and what each did."""
    return await service.reconcile_passes(limit)


@router.post("/reconciler/passes", response_model=ReconcileResult)
async def run_reconciler_pass(request: Request) -> ReconcileResult:
    """Run one reconciler pass now, on this replica, and return what it did."""
    reconciler = app_state(request).reconciler
    loop = asyncio.get_running_loop()
    started = loop.time()
    report = await reconciler.run_once()
    return ReconcileResult(
        actions=dict(report.actions),
        errors=report.errors,
        duration_ms=round((loop.time() - started) * 1000),
    )


@router.get("/tavus", response_model=TavusState)
async def tavus_state(service: Service) -> TavusState:
    """This replica's Tavus circuit breaker, bulkhead and retry budget."""
    return service.tavus_state()


@router.get("/callbacks", response_model=CallbackOutcomes)
async def callback_outcomes(
    service: Service, hours: Annotated[int, Query(ge=1, le=24 * 30)] = 24
) -> CallbackOutcomes:
    """Tavus callbacks received in the last `hours`, by event type and outcome."""
    return await service.callback_outcomes(hours)
