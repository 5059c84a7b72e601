"""HTTP routes of the mentor's actions.

- `POST /v1/tavus/tools/{tool_name}` and `POST /v1/tavus/post-call/session_report`: Tavus's
  signed deliveries (no bearer token: the HMAC signature is the authentication).
- `/v1/me/goal-changes` and `/v1/me/memory`: the user's view of what the mentor changed and
  remembers.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import PlainTextResponse

from facetoface.app_state import AppState, app_state
from facetoface.auth.dependencies import CurrentIdentity
from facetoface.errors import problem
from facetoface.tavus.mentor_tools import POST_CALL_PATH, SESSION_REPORT, TOOLS_PATH
from facetoface.tools.schemas import (
    GoalChangeOut,
    GoalChangePage,
    MemoryForgotten,
    MemoryOut,
    ToolCallBody,
)
from facetoface.tools.signature import SIGNATURE_HEADER

tavus_router = APIRouter(tags=["tavus tools"])
me_router = APIRouter(prefix="/v1/me", tags=["me"])

_TOOL_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A short text for the model (what was done, or why not)",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    },
    404: problem(
        "The same answer for every call not acted on: missing or wrong signature, unknown "
        "tool, a conversation that is not a live session of ours, another user's goal"
    ),
    413: problem("Body too large"),
    422: problem("A signed call whose body or arguments are invalid (`invalid_tool_call`)"),
    503: problem("The database is unavailable; see Retry-After"),
}
_ME: dict[int | str, dict[str, Any]] = {
    401: problem("Missing or invalid access token"),
    422: problem("A path or query parameter does not match the schema"),
    503: problem("A dependency (the database, or Tavus for memory) is unavailable"),
}

#: The body Tavus sends (read raw: the signature covers its exact bytes), for the API's map.
_TOOL_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": ToolCallBody.model_json_schema()}},
    }
}

Signature = Annotated[
    str | None,
    Header(
        alias=SIGNATURE_HEADER,
        description="Lowercase hex HMAC-SHA256 of the raw body with TAVUS_TOOL_SECRET.",
    ),
]


def _state(request: Request) -> AppState:
    return app_state(request)


State = Annotated[AppState, Depends(_state)]


@tavus_router.post(
    f"{TOOLS_PATH}/{{tool_name}}",
    response_class=PlainTextResponse,
    responses=_TOOL_ANSWERS,
    openapi_extra=_TOOL_BODY,
)
async def tool_call(
    tool_name: str, request: Request, state: State, signature: Signature = None
) -> PlainTextResponse:
    """A tool call Tavus delivers during a session (`update_goal_progress`, `add_goal`,
    `remember`), signed with `X-Tavus-Signature`. Body:
    `{"conversation_id", "tool_call_id", "arguments": {...}}`."""
    body = await request.body()
    answer = await state.mentor_actions.tool_call(tool_name, body, signature)
    return PlainTextResponse(answer)


@tavus_router.post(
    f"{POST_CALL_PATH}/{SESSION_REPORT}",
    response_class=PlainTextResponse,
    responses=_TOOL_ANSWERS,
    openapi_extra=_TOOL_BODY,
)
async def session_report(
    request: Request, state: State, signature: Signature = None
) -> PlainTextResponse:
    """The post-call action `session_report` (summary, next steps, goal updates, mood), once
    per session, up to SESSION_REPORT_WINDOW_SECONDS after it ended; same body and signature
    as a tool call."""
    body = await request.body()
    answer = await state.mentor_actions.session_report(body, signature)
    return PlainTextResponse(answer)


@me_router.get(
    "/goal-changes",
    response_model=GoalChangePage,
    responses={**_ME, 400: problem("Invalid cursor")},
)
async def my_goal_changes(
    identity: CurrentIdentity,
    state: State,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    session_id: Annotated[uuid.UUID | None, Query(description="Only this session's")] = None,
) -> GoalChangePage:
    """What the mentor changed in the caller's goals, newest first."""
    return await state.goal_changes.page(
        identity, limit=limit, cursor=cursor, session_id=session_id
    )


@me_router.post(
    "/goal-changes/{change_id}/undo",
    response_model=GoalChangeOut,
    responses={
        **_ME,
        404: problem("No such change of the caller's"),
        409: problem("The goal changed since (`goal_changed_since`): undoing would lose that"),
    },
)
async def undo_goal_change(
    change_id: uuid.UUID, identity: CurrentIdentity, state: State
) -> GoalChangeOut:
    """Restore the goal as it was before this change (idempotent)."""
    return await state.goal_changes.undo(identity, change_id)


@me_router.get("/memory", response_model=MemoryOut, responses=_ME)
async def my_memory(identity: CurrentIdentity, state: State) -> MemoryOut:
    """What the mentor remembers of the caller: pinned facts and what Tavus learned."""
    return await state.memory.read(identity)


@me_router.delete(
    "/memory/pinned/{memory_id}",
    status_code=204,
    responses={**_ME, 404: problem("None of the caller's memories has this id")},
)
async def forget_pinned(
    memory_id: Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")],
    identity: CurrentIdentity,
    state: State,
) -> Response:
    """Forget one pinned fact."""
    await state.memory.forget_pinned(identity, memory_id)
    return Response(status_code=204)


@me_router.delete("/memory", response_model=MemoryForgotten, responses=_ME)
async def forget_everything(identity: CurrentIdentity, state: State) -> MemoryForgotten:
    """Delete everything the mentor remembers of the caller (their memory stores at Tavus).
    The `mentor_memory` preference is unchanged: turn it off to stop remembering."""
    return await state.memory.forget_all(identity)
