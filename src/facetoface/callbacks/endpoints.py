"""The Tavus callback route. Its path embeds the session's secret token."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from facetoface.callbacks.service import CallbackService
from facetoface.errors import FacetofaceError

router = APIRouter(prefix="/v1/callbacks", tags=["callbacks"])

_PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}


class PayloadTooLarge(FacetofaceError):
    status_code = 413
    code = "payload_too_large"
    title = "Request body too large"


class CallbackAccepted(BaseModel):
    status: str


async def read_limited(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) anything over `limit` bytes without buffering it."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The body exceeds {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The body exceeds {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


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
async def tavus_callback(mentor_conversation_id: str, token: str, request: Request) -> Any:
    """Receive a Tavus conversation callback (the URL is given to Tavus at create).

    2xx means stored: `applied`, `no_effect`, `ignored` (unknown event type) or `duplicate`.
    """
    settings = request.app.state.settings
    body = await read_limited(request, settings.callback_max_body_bytes)
    service: CallbackService = request.app.state.callback_service
    outcome = await service.ingest(mentor_conversation_id, token, body)
    return CallbackAccepted(status=outcome)
