"""HTTP routes of the sessions feature."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request

from facetoface.auth.dependencies import CurrentIdentity
from facetoface.sessions.schemas import SessionOut, StartSessionRequest
from facetoface.sessions.service import SessionService

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])

_PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid access token", **_PROBLEM},
    404: {"description": "No such session for this user", **_PROBLEM},
    422: {"description": "The request does not match the schema", **_PROBLEM},
    503: {"description": "A dependency is unavailable; see Retry-After", **_PROBLEM},
}


def get_session_service(request: Request) -> SessionService:
    service: SessionService = request.app.state.session_service
    return service


Service = Annotated[SessionService, Depends(get_session_service)]


@router.post(
    "",
    status_code=201,
    response_model=SessionOut,
    responses={
        **_RESPONSES,
        403: {"description": "The chosen mentor needs a paid subscription", **_PROBLEM},
        409: {"description": "A session is already live (`session` holds it)", **_PROBLEM},
        502: {"description": "Tavus rejected this deployment's request", **_PROBLEM},
    },
)
async def start_session(
    identity: CurrentIdentity,
    service: Service,
    body: Annotated[StartSessionRequest | None, Body()] = None,
) -> SessionOut:
    """Start a face-to-face session for the caller and return where to join it."""
    row = await service.start(identity, body.mentor_id if body else None)
    return SessionOut.from_row(row)


@router.post("/{session_id}/end", response_model=SessionOut, responses=_RESPONSES)
async def end_session(
    session_id: uuid.UUID, identity: CurrentIdentity, service: Service
) -> SessionOut:
    """End the caller's session (idempotent)."""
    return SessionOut.from_row(await service.end(identity, session_id))


@router.get("/{session_id}", response_model=SessionOut, responses=_RESPONSES)
async def get_session(
    session_id: uuid.UUID, identity: CurrentIdentity, service: Service
) -> SessionOut:
    """One of the caller's sessions."""
    return SessionOut.from_row(await service.get(identity, session_id))
