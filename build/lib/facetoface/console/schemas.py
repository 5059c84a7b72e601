"""Bodies of the console's development sign-in API (`/v1/dev/...`)."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field


class DevUser(BaseModel):
    user_id: uuid.UUID
    email: str | None
    name: str
    operator: bool = Field(description='The token carries `facetoface_role = "operator"`.')


class DevUsers(BaseModel):
    users: list[DevUser]


class DevTokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: uuid.UUID = Field(description="One of the listed development users.")


class DevToken(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
