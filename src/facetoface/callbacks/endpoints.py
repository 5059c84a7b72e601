"""The Tavus callback route. Its path embeds the session's secret token."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from facetoface.app_state import app_state
from facetoface.conversations.status import CallbackOutcome

router = APIRouter(prefix="/v1/callbacks", tags=["callbacks"])

_PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}


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
        400: {"description": "Not a Tavus conversation callback", **_PROBLEM},
        404: {"description": "Unknown callback URL (wrong token or conversation)", **_PROBLEM},
        413: {"description": "Body too large", **_PROBLEM},
        503: {"description": "Could not be stored; the sender should retry", **_PROBLEM},
    },
)
async def tavus_callback(mentor_conversation_id: str, token: str, request: Request) -> Response:
    """Receive a Tavus conversation callback (the URL is given to Tavus at create).

    2xx means stored: `applied`, `no_effect`, `ignored` (unknown event type) or `duplicate`.
    """
    # `BodyLimitMiddleware` has already refused (413) bodies over CALLBACK_MAX_BODY_BYTES.
    body = await request.body()
    outcome = await app_state(request).callbacks.ingest(mentor_conversation_id, token, body)
    return Response(_ACCEPTED[outcome], media_type="application/json")
