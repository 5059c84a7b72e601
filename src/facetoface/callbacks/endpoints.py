"""The Tavus callback route. Its path embeds the session's secret token."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel

from facetoface.app_state import app_state
from facetoface.conversations.status import CallbackOutcome
from facetoface.errors import problem

#: Where Tavus's callbacks arrive (their bodies take CALLBACK_MAX_BODY_BYTES).
CALLBACKS_PREFIX = "/v1/callbacks/"


class _LeanRoute(APIRoute):
    """Documented as any route; served without FastAPI's per-request dependency solving and
    parameter validation, which the hottest route does not use: its endpoint takes its two
    path parameters as strings (checked by the service) and the request."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = self.endpoint

        async def handler(request: Request) -> Response:
            response: Response = await endpoint(request=request, **request.path_params)
            return response

        return handler


router = APIRouter(prefix=CALLBACKS_PREFIX.rstrip("/"), tags=["callbacks"], route_class=_LeanRoute)


class CallbackAccepted(BaseModel):
    status: CallbackOutcome


#: The four answers, encoded once: the hottest route skips response-model serialisation.
_ACCEPTED = {
    outcome.value: CallbackAccepted(status=outcome).model_dump_json().encode()
    for outcome in CallbackOutcome
}


@router.post(
    "/tavus/{mentor_conversation_id}/{token}",
    response_model=CallbackAccepted,
    responses={
        400: problem("Not a Tavus conversation callback"),
        404: problem("Unknown callback URL (wrong token or conversation)"),
        413: problem("Body too large"),
        503: problem("Could not be stored; the sender should retry"),
    },
)
async def tavus_callback(mentor_conversation_id: str, token: str, request: Request) -> Response:
    """Receive a Tavus conversation callback (the URL is given to Tavus at create).

    2xx means stored: `applied`, `no_effect`, `ignored` (unknown event type) or `duplicate`.
    """
    callbacks = app_state(request).callbacks
    # A URL this service never gave out is refused before its body is read (in memory).
    await callbacks.authenticate(mentor_conversation_id, token)
    # `BodyLimitMiddleware` has already refused (413) bodies over CALLBACK_MAX_BODY_BYTES.
    body = await request.body()
    outcome = await callbacks.ingest(mentor_conversation_id, token, body)
    return Response(_ACCEPTED[outcome], media_type="application/json")
