"""The origin's Edge Function routes: `POST /functions/v1/{start-tavus-session,
end-tavus-session,tavus-webhook}`, where `supabase.functions.invoke(name)` sends them."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Request
from fastapi.responses import JSONResponse
from starlette.convertors import StringConvertor, register_url_convertor

from facetoface.app_state import app_state
from facetoface.auth.dependencies import CurrentIdentity
from facetoface.compat.errors import ORIGIN_PREFIX, FunctionNotFound, OriginErrorRoute, origin_error
from facetoface.compat.schemas import (
    EndTavusSessionRequest,
    EndTavusSessionResponse,
    StartTavusSessionRequest,
    StartTavusSessionResponse,
    WebhookHint,
    WebhookResponse,
)
from facetoface.compat.service import CompatService

router = APIRouter(
    prefix=ORIGIN_PREFIX.rstrip("/"), tags=["origin edge functions"], route_class=OriginErrorRoute
)

#: The functions this service answers for (any other name is a 404, as at Supabase).
FUNCTIONS = ("start-tavus-session", "end-tavus-session", "tavus-webhook")
#: The origin's webhook receives Tavus's events too (the larger body limit).
WEBHOOK_PATH = f"{ORIGIN_PREFIX}tavus-webhook"

_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: origin_error("The body is not what this function accepts"),
    401: origin_error("Missing or invalid user access token"),
    403: origin_error("`user_id` is not the signed-in user"),
    404: origin_error("No such session (or mentor) for this user"),
    413: origin_error("Body too large"),
    503: origin_error("A dependency is unavailable; see Retry-After"),
}


async def get_compat_service(request: Request) -> CompatService:
    return app_state(request).compat


Compat = Annotated[CompatService, Depends(get_compat_service)]


@router.post(
    "/start-tavus-session",
    response_model=StartTavusSessionResponse,
    responses={
        **_RESPONSES,
        409: origin_error(
            "A session is live: its `conversation_url`, `conversation_id`, "
            "`mentor_conversation_id` and `daily_session_id` are in the body to rejoin it"
        ),
        429: origin_error("Too many sessions started in the window"),
        502: origin_error("Tavus rejected this deployment's request"),
    },
)
async def start_tavus_session(
    identity: CurrentIdentity,
    service: Compat,
    body: Annotated[StartTavusSessionRequest | None, Body()] = None,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Makes retries safe, exactly as on `POST /v1/sessions`.",
            json_schema_extra={"pattern": "^[!-~]{1,255}$"},
        ),
    ] = None,
) -> Any:
    """The origin's start: a session for the token's user, on the `/v1/sessions` engine."""
    outcome = await service.start(identity, body or StartTavusSessionRequest(), idempotency_key)
    if outcome.replayed:
        return JSONResponse(
            outcome.body.model_dump(mode="json"), headers={"Idempotent-Replayed": "true"}
        )
    return outcome.body


@router.post("/end-tavus-session", response_model=EndTavusSessionResponse, responses=_RESPONSES)
async def end_tavus_session(
    identity: CurrentIdentity, service: Compat, body: EndTavusSessionRequest
) -> EndTavusSessionResponse:
    """The origin's end: the caller's session named by any of its ids (idempotent)."""
    row = await service.end(identity, body)
    return EndTavusSessionResponse(
        duration_seconds=row.duration_seconds, message="Session ended successfully"
    )


@router.post(
    "/tavus-webhook",
    response_model=WebhookResponse,
    # The body is read raw (only a hint): documented here, parsed by the service.
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": WebhookHint.model_json_schema()}},
        }
    },
    responses={
        400: origin_error("Not a JSON object with a Tavus `conversation_id`"),
        413: origin_error("Body too large"),
        429: origin_error("Too many posts; see Retry-After"),
        503: origin_error("Tavus could not be asked now; the sender should retry"),
    },
)
async def tavus_webhook(request: Request, service: Compat) -> WebhookResponse:
    """Tavus's posts for conversations created before the switch (their callback URL is
    fixed). Unsigned: only `conversation_id` is read, and what Tavus itself reports about that
    conversation is ingested. `200` for conversations that are not ours too."""
    await service.webhook(await request.body())
    return WebhookResponse(message="Webhook processed successfully")


class _OtherFunction(StringConvertor):
    """A path segment naming none of `FUNCTIONS` (so a wrong method on one of them is still a
    405 whose `Allow` lists exactly its methods)."""

    regex = "(?!(?:" + "|".join(re.escape(f) for f in FUNCTIONS) + ")$)[^/]+"


register_url_convertor("other_edge_function", _OtherFunction())


@router.api_route(
    "/{name:other_edge_function}",
    methods=["GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE", "POST"],
    include_in_schema=False,
)
async def unknown_function(name: str) -> None:
    """Supabase's answer for a function it does not host, in the origin's shape."""
    raise FunctionNotFound("Requested function was not found.")
