"""Tavus's answers about the mentor's tools and memory: the tools registry (`/v2/tools`,
`/v2/pals/{id}/tools`) and a memory store's pinned and learned memory.

Tavus documents the requests and the ids (`tool_id`, `memory_store_id`) but not every
envelope, so lists are accepted as `{"data": [...]}` or a bare list, entries without an id
are dropped, and a pinned memory may be a bare string (then it has no id and cannot be
forgotten alone) or an object.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from facetoface.tavus.schemas import LenientDatetime, LenientStr

_RESPONSE_CONFIG = ConfigDict(extra="ignore", coerce_numbers_to_str=True, frozen=True)


def _entries(data: Any, key: str) -> Any:
    if isinstance(data, list):
        data = {"data": data}
    if not isinstance(data, dict):
        return data
    raw = data.get("data")
    if not isinstance(raw, list):
        tools = data.get("tools")
        raw = tools if isinstance(tools, list) else []
    return {
        **data,
        "data": [e for e in raw if isinstance(e, dict) and isinstance(e.get(key), str) and e[key]],
    }


class ToolApi(BaseModel):
    """`delivery.api` of a tool: where Tavus sends the call (the secret is never read back)."""

    model_config = _RESPONSE_CONFIG

    url: LenientStr = None
    method: LenientStr = None


class ToolDelivery(BaseModel):
    model_config = _RESPONSE_CONFIG

    api: ToolApi | None = None


class Tool(BaseModel):
    """A tool of the registry (`POST/GET /v2/tools`)."""

    model_config = _RESPONSE_CONFIG

    tool_id: str = Field(min_length=1)
    name: LenientStr = None
    description: LenientStr = None
    trigger_type: LenientStr = None
    parameters: dict[str, Any] | None = None
    delivery: ToolDelivery | None = None

    @property
    def url(self) -> str | None:
        """Where Tavus delivers its calls (`delivery.api.url`)."""
        return self.delivery.api.url if self.delivery and self.delivery.api else None


class ToolPage(BaseModel):
    """`GET /v2/tools` or `GET /v2/pals/{id}/tools`."""

    model_config = _RESPONSE_CONFIG

    data: list[Tool] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _usable(cls, data: Any) -> Any:
        return _entries(data, "tool_id")


class PinnedMemory(BaseModel):
    """One pinned memory of a store: a fact set by us (`POST .../pinned`)."""

    model_config = _RESPONSE_CONFIG

    memory_id: LenientStr = None
    memory: str = ""
    created_at: LenientDatetime = None

    @model_validator(mode="before")
    @classmethod
    def _shapes(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"memory": data}
        if isinstance(data, dict):
            text = data.get("memory", data.get("content", data.get("text")))
            ident = data.get("memory_id", data.get("id"))
            return {**data, "memory": text if isinstance(text, str) else "", "memory_id": ident}
        return data


class MemoryStoreDetails(BaseModel):
    """`GET /v2/memory-stores/{id}`: the store and its pinned memories."""

    model_config = _RESPONSE_CONFIG

    memory_store_id: str = Field(min_length=1)
    pal_id: LenientStr = None
    participant_tag: LenientStr = None
    pinned_memories: list[PinnedMemory] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _pinned_list(cls, data: Any) -> Any:
        # `pinned_memories` is documented as the texts (string[], as on create); the pinned
        # memories with their ids may come beside them as `pinned`: those are preferred.
        if not isinstance(data, dict):
            return data
        with_ids = data.get("pinned")
        if isinstance(with_ids, list):
            return {**data, "pinned_memories": with_ids}
        if not isinstance(data.get("pinned_memories"), list):
            return {**data, "pinned_memories": []}
        return data


class LearnedMemory(BaseModel):
    """`GET /v2/memory-stores/{id}/learned?type=profile|timeline`: what Tavus consolidated
    after calls — a profile (an object of facts) and/or a timeline of recent conversations.
    Kept as Tavus sends them (the service shows them to the user, it does not interpret them).
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    profile: dict[str, Any] | None = None
    timeline: dict[str, Any] | list[Any] | None = None
