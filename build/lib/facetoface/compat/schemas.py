"""Bodies of the origin's routes, as its app sends and reads them (snake_case, as it was)."""

from __future__ import annotations

import uuid
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: A Tavus conversation id as Tavus issues them (and as the Tavus client accepts them in paths).
TavusConversationId = Annotated[
    str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")
]


class StartTavusSessionRequest(BaseModel):
    """Body of `start-tavus-session`: both shapes the origin's app sent, `{user_id}` and
    `{user_id, persona_id}`. The caller is always the token's user; `user_id` may only repeat
    it."""

    model_config = ConfigDict(extra="forbid")

    user_id: uuid.UUID | None = Field(
        default=None, description="The signed-in user's id (optional; anything else is a 403)."
    )
    persona_id: uuid.UUID | None = Field(
        default=None,
        description="One of the caller's `user_personas` ids; default: the active one.",
    )


class StartTavusSessionResponse(BaseModel):
    """What `start-tavus-session` answered, field for field."""

    success: bool = True
    conversation_url: str | None = Field(description="Where the user joins the video call.")
    conversation_id: str | None = Field(description="Tavus's conversation id.")
    mentor_conversation_id: uuid.UUID
    daily_session_id: uuid.UUID = Field(description="The session id (`/v1/sessions/{id}`).")
    persona_name: str | None = Field(description="The mentor's name; null for the default.")


#: The ids an end may name its session by; at least one is required.
SESSION_IDS = ("tavus_conversation_id", "mentor_conversation_id", "daily_session_id")


class EndTavusSessionRequest(BaseModel):
    """Body of `end-tavus-session`: any of the session's ids. The origin's shipped page sends
    only `tavus_conversation_id`; the ids given must all name the same session of the caller."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "anyOf": [
                {"required": [name], "properties": {name: {"not": {"type": "null"}}}}
                for name in SESSION_IDS
            ]
        },
    )

    tavus_conversation_id: TavusConversationId | None = None
    mentor_conversation_id: uuid.UUID | None = None
    daily_session_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = Field(
        default=None, description="The signed-in user's id (optional; anything else is a 403)."
    )

    @model_validator(mode="after")
    def _names_a_session(self) -> Self:
        if all(getattr(self, name) is None for name in SESSION_IDS):
            raise ValueError("give " + ", ".join(SESSION_IDS[:-1]) + " or " + SESSION_IDS[-1])
        return self


class EndTavusSessionResponse(BaseModel):
    success: bool = True
    duration_seconds: int | None = Field(
        description="Tavus's call time when known, else to the end call; null if it never ran."
    )
    message: str


class WebhookHint(BaseModel):
    """The only part of a post to `tavus-webhook` that is read: which conversation to look up
    at Tavus. Everything else in the body is ignored (it is unsigned)."""

    model_config = ConfigDict(extra="ignore")

    conversation_id: TavusConversationId


class WebhookResponse(BaseModel):
    success: bool = True
    message: str
