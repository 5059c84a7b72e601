"""Request and response bodies of `/v1/me/preferences`."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

_MENTOR_MEMORY = (
    "Whether the mentor may carry things over from earlier sessions: the context's \"since "
    'last time" section (previous sessions, your last words, goals updated since) and, where '
    "the deployment enables it, Tavus's own memory of you. Default: true."
)


class PreferencesUpdate(BaseModel):
    """Body of `PUT /v1/me/preferences`: every preference, as it should be from now on."""

    model_config = ConfigDict(extra="forbid")

    mentor_memory: bool = Field(strict=True, description=_MENTOR_MEMORY)


class PreferencesOut(BaseModel):
    """The caller's preferences (the defaults until they change one)."""

    mentor_memory: bool = Field(description=_MENTOR_MEMORY)
    updated_at: datetime | None = Field(description="When they were last changed; null: never.")
