"""HTTP routes of the sessions feature."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response

from facetoface.app_state import app_state
from facetoface.auth.dependencies import CurrentIdentity
from facetoface.errors import problem
from facetoface.sessions.idempotency import Replay, idempotency_request
from facetoface.sessions.schemas import (
    ContextPreview,
    ContextSectionOut,
    MentorPreview,
    OwnSessionOut,
    SessionDetail,
    SessionOut,
    SessionPage,
    SessionReportOut,
    StartSessionRequest,
    TimelineEvent,
    TranscriptEntry,
)
from facetoface.sessions.service import SessionService

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: problem("Missing or invalid access token"),
    404: problem("No such session for this user"),
    422: problem("The request does not match the schema"),
    503: problem("A dependency is unavailable; see Retry-After"),
}


async def get_session_service(request: Request) -> SessionService:
    return app_state(request).sessions


Service = Annotated[SessionService, Depends(get_session_service)]


@router.post(
    "",
    status_code=201,
    response_model=OwnSessionOut,
    responses={
        **_RESPONSES,
        400: problem("Malformed Idempotency-Key header"),
        403: problem(
            "The chosen mentor needs a paid subscription, or the caller is an anonymous user"
        ),
        409: problem(
            "A session is already live (`session` holds it), or the same "
            "Idempotency-Key is still in flight"
        ),
        410: problem(
            "The session was deleted while it was starting (`session_deleted`), or the "
            "user's data is being erased (`erasure_in_progress`)"
        ),
        413: problem("Body too large"),
        429: problem("Too many sessions started in the window"),
        502: problem("Tavus rejected this deployment's request"),
    },
)
async def start_session(
    identity: CurrentIdentity,
    service: Service,
    body: Annotated[StartSessionRequest | None, Body()] = None,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Makes retries safe: the same key replays the first start's answer.",
            # Documented, checked by `idempotency_request` (a 400, not FastAPI's 422).
            json_schema_extra={"pattern": "^[!-~]{1,255}$"},
        ),
    ] = None,
) -> Any:
    """Start a face-to-face session for the caller and return where to join it."""
    request = body or StartSessionRequest()
    idempotency = idempotency_request(idempotency_key, request.model_dump(mode="json"))
    result = await service.start(identity, request.mentor_id, idempotency)
    if isinstance(result, Replay):
        return JSONResponse(
            result.body,
            status_code=result.status_code,
            headers={"Idempotent-Replayed": "true"},
        )
    started = OwnSessionOut.for_owner(result.session, result.meeting_token)
    return JSONResponse(started.to_json(), status_code=201)


@router.post("/{session_id}/end", response_model=SessionOut, responses=_RESPONSES)
async def end_session(
    session_id: uuid.UUID, identity: CurrentIdentity, service: Service
) -> SessionOut:
    """End the caller's session (idempotent)."""
    return SessionOut.from_row(await service.end(identity, session_id))


@router.delete("/{session_id}", status_code=204, responses=_RESPONSES)
async def delete_session(
    session_id: uuid.UUID, identity: CurrentIdentity, request: Request
) -> Response:
    """Delete the caller's session here and at Tavus (transcript, recording, events)."""
    await app_state(request).data_rights.delete(identity, session_id)
    return Response(status_code=204)


@router.get(
    "",
    response_model=SessionPage,
    responses={**_RESPONSES, 400: problem("Not a cursor this API issued")},
)
async def list_sessions(
    identity: CurrentIdentity,
    service: Service,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> SessionPage:
    """The caller's sessions, newest first, `limit` at a time."""
    rows, next_cursor = await service.list_sessions(identity, limit=limit, cursor=cursor)
    return SessionPage(items=[SessionOut.from_row(r) for r in rows], next_cursor=next_cursor)


@router.get("/{session_id}", response_model=SessionDetail, responses=_RESPONSES)
async def get_session(
    session_id: uuid.UUID, identity: CurrentIdentity, service: Service, request: Request
) -> Any:
    """One of the caller's sessions, with transcript, recording, analysis and timeline (and,
    while it is live, a private room's meeting token)."""
    row, extras, timeline = await service.detail(identity, session_id)
    per_minute = app_state(request).settings.tavus_cost_per_minute
    detail = SessionDetail(
        **SessionOut.from_row(row).model_dump(),
        meeting_token=extras.meeting_token,
        replica_joined_at=extras.replica_joined_at,
        transcript=[
            TranscriptEntry.model_validate(entry)
            for entry in extras.transcript or []
            # Stored as Tavus sent it: entries not of the documented shape are left out.
            if isinstance(entry.get("role"), str)
            and entry["role"].lower() != "system"
            and isinstance(entry.get("content"), str)
        ]
        if extras.transcript is not None
        else None,
        transcript_text=extras.conversation_transcript,
        recording=extras.recording,
        perception_analysis=extras.perception_analysis,
        post_call_actions=extras.post_call_actions,
        events=[
            TimelineEvent(
                event_type=t.event_type,
                occurred_at=t.event_timestamp,
                received_at=t.received_at,
                outcome=t.outcome,
            )
            for t in timeline
        ],
        report=SessionReportOut.build(extras.report, row.duration_seconds, per_minute)
        if extras.report is not None
        else None,
    )
    return JSONResponse(detail.to_json())


me_router = APIRouter(prefix="/v1/me", tags=["me"])


@me_router.get("/context", response_model=ContextPreview, responses=_RESPONSES)
async def my_context(
    identity: CurrentIdentity,
    service: Service,
    mentor_id: Annotated[uuid.UUID | None, Query()] = None,
) -> ContextPreview:
    """The context the mentor would receive if the caller started a session now."""
    context, mentor = await service.preview_context(identity, mentor_id)
    return ContextPreview(
        text=context.text,
        sections=[ContextSectionOut(**s.model_dump()) for s in context.sections],
        language=context.language,
        truncated=context.truncated,
        mentor=MentorPreview(
            name=mentor.name, persona_id=mentor.persona_id, replica_id=mentor.replica_id
        ),
    )
