"""HTTP routes of the preferences feature: `/v1/me/preferences`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from facetoface.app_state import app_state
from facetoface.auth.dependencies import CurrentIdentity
from facetoface.errors import problem
from facetoface.preferences.schemas import PreferencesOut, PreferencesUpdate
from facetoface.preferences.service import PreferencesService

router = APIRouter(prefix="/v1/me", tags=["me"])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: problem("Missing or invalid access token"),
    404: problem("The caller has no profile yet (`profile_not_found`)"),
    503: problem("The database is unavailable; see Retry-After"),
}


async def get_preferences_service(request: Request) -> PreferencesService:
    return app_state(request).preferences


Service = Annotated[PreferencesService, Depends(get_preferences_service)]


@router.get("/preferences", response_model=PreferencesOut, responses=_RESPONSES)
async def my_preferences(identity: CurrentIdentity, service: Service) -> PreferencesOut:
    """The caller's preferences (the defaults until they change one)."""
    return await service.get(identity)


@router.put(
    "/preferences",
    response_model=PreferencesOut,
    responses={
        **_RESPONSES,
        400: problem("The body is not JSON"),
        413: problem("Body too large"),
        422: problem("The body does not match the schema"),
    },
)
async def set_my_preferences(
    update: PreferencesUpdate, identity: CurrentIdentity, service: Service
) -> PreferencesOut:
    """Replace the caller's preferences. `mentor_memory: false` stops the mentor carrying
    anything over from earlier sessions, from the next start on."""
    return await service.put(identity, update)
