"""Pydantic models for the Tavus CVI endpoints the service uses: conversations, personas,
replicas and memory stores.

Request models are strict (`extra="forbid"`, serialised without `None` fields) so a typo never
reaches Tavus silently. Response models are tolerant, because Tavus's payloads churn from one
generation of its docs to the next: unknown fields are ignored, every field except the id is
optional, a malformed optional value becomes `None` instead of failing the whole response, and
timestamps are accepted as ISO-8601, epoch numbers or RFC-1123 dates.

Fields that hold secrets or room credentials (`callback_url`, `conversational_context`,
`conversation_url`, `meeting_token`) are hidden from `repr()` so that logging a model by
accident does not leak them.

Every Tavus request and answer model is here, one place to compare with Tavus's documentation:
hence its length.
"""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
)

__all__ = [
    "Conversation",
    "ConversationDetails",
    "ConversationEvent",
    "ConversationPage",
    "ConversationProperties",
    "CreateConversationRequest",
    "MemoryStore",
    "MemoryStorePage",
    "Persona",
    "Replica",
]

TRANSCRIPTION_READY = "application.transcription_ready"
SHUTDOWN = "system.shutdown"


def _lenient_str(value: Any, handler: ValidatorFunctionWrapHandler) -> str | None:
    try:
        result: str | None = handler(value)
    except ValidationError:
        return None
    return result


def _lenient_datetime(value: Any, handler: ValidatorFunctionWrapHandler) -> datetime | None:
    try:
        result: datetime | None = handler(value)
    except ValidationError:
        pass
    else:
        return result
    if isinstance(value, str):
        # RFC-1123, as some Tavus endpoints use ("Tue, 24 Jun 2025 07:01:57 GMT").
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    return None


#: An optional string that becomes None rather than failing validation.
LenientStr = Annotated[str | None, WrapValidator(_lenient_str)]
#: An optional timestamp (ISO-8601, epoch seconds or RFC-1123); None when unparseable.
LenientDatetime = Annotated[datetime | None, WrapValidator(_lenient_datetime)]
#: A tag sent to Tavus: a non-empty string.
Tag = Annotated[str, StringConstraints(min_length=1)]


# --- requests -------------------------------------------------------------------------------


class ConversationProperties(BaseModel):
    """The `properties` object of a create request (all optional; unset fields are omitted)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_call_duration: int | None = Field(default=None, ge=1)
    participant_left_timeout: int | None = Field(default=None, ge=0)
    participant_absent_timeout: int | None = Field(default=None, ge=0)
    enable_recording: bool | None = None
    enable_closed_captions: bool | None = None
    apply_greenscreen: bool | None = None
    #: Full language name ("english", "french") or "multilingual" — not a language code.
    language: str | None = None


class CreateConversationRequest(BaseModel):
    """Body of `POST /v2/conversations`. Needs a `replica_id` or a `persona_id` (or both).

    They are sent under Tavus's current names, `face_id` and `pal_id` (Tavus renamed replicas
    to Faces and personas to PALs; the ids are the same and the old names still work).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    replica_id: str | None = Field(default=None, serialization_alias="face_id")
    persona_id: str | None = Field(default=None, serialization_alias="pal_id")
    #: Contains this service's secret per-conversation token: never log it.
    callback_url: str | None = Field(default=None, repr=False)
    #: Used as the reconciliation handle (our session id); safe to log.
    conversation_name: str | None = None
    #: User-provided material: never log it.
    conversational_context: str | None = Field(default=None, repr=False)
    custom_greeting: str | None = None
    #: Validate the whole create path without a live room: Tavus answers `status: "ended"`,
    #: the replica never joins, nothing is billed and no concurrency slot is used.
    test_mode: bool | None = None
    #: Private room: Tavus answers with a `meeting_token` the participant needs to join.
    require_auth: bool | None = None
    #: Memory Stores: the persona's memory of this participant follows them across
    #: conversations. Tavus takes one tag per conversation today.
    participant_tags: list[Tag] | None = Field(default=None, min_length=1, max_length=1)
    #: Legacy memory tags (the older memory system; Tavus recommends `participant_tags`).
    memory_stores: list[Tag] | None = Field(default=None, min_length=1)
    properties: ConversationProperties | None = None

    @model_validator(mode="after")
    def _needs_replica_or_persona(self) -> CreateConversationRequest:
        if not self.replica_id and not self.persona_id:
            msg = "a Tavus conversation needs a replica_id or a persona_id"
            raise ValueError(msg)
        return self

    def to_payload(self) -> dict[str, Any]:
        """The JSON body to send: `None` fields (also inside `properties`) are omitted."""
        return self.model_dump(mode="json", exclude_none=True, by_alias=True)


# --- responses ------------------------------------------------------------------------------

_RESPONSE_CONFIG = ConfigDict(extra="ignore", coerce_numbers_to_str=True, frozen=True)


class TavusStatus(StrEnum):
    """A conversation's `status` as Tavus documents it (it may add more: `Conversation.status`
    stays a plain string, compared with these)."""

    active = "active"
    ended = "ended"


class Conversation(BaseModel):
    """A conversation as returned by create, get and list."""

    model_config = _RESPONSE_CONFIG

    conversation_id: str = Field(min_length=1)
    conversation_name: LenientStr = None
    #: The room link: anyone holding it can join (unless require_auth). Never log it.
    conversation_url: LenientStr = Field(default=None, repr=False)
    #: "active" or "ended" as documented; kept as a plain string because Tavus may add more.
    status: LenientStr = None
    #: Tavus returns "" when none was set. Contains our secret token: never log it.
    callback_url: LenientStr = Field(default=None, repr=False)
    created_at: LenientDatetime = None
    updated_at: LenientDatetime = None
    #: Tavus answers `replica_id`/`persona_id`; `face_id`/`pal_id`, the current names, are
    #: read too.
    replica_id: LenientStr = Field(
        default=None, validation_alias=AliasChoices("replica_id", "face_id")
    )
    persona_id: LenientStr = Field(
        default=None, validation_alias=AliasChoices("persona_id", "pal_id")
    )
    #: Only with require_auth: a join credential. Never log it.
    meeting_token: LenientStr = Field(default=None, repr=False)


class ConversationEvent(BaseModel):
    """One entry of a verbose GET's `events` list (same shape as a webhook callback)."""

    model_config = _RESPONSE_CONFIG

    event_type: LenientStr = None
    message_type: LenientStr = None
    timestamp: LenientDatetime = None
    properties: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _properties_must_be_a_dict(cls, data: Any) -> Any:
        if isinstance(data, dict) and not isinstance(data.get("properties"), dict):
            data = {**data, "properties": {}}
        return data


def _last_event_property(events: list[dict[str, Any]], event_type: str, key: str) -> Any:
    for event in reversed(events):
        props = event.get("properties")
        if event.get("event_type") == event_type and isinstance(props, dict) and key in props:
            return props[key]
    return None


class ConversationDetails(Conversation):
    """`GET /v2/conversations/{id}` (with `?verbose=true`: events, shutdown reason, transcript).

    Tavus does not document the verbose schema fully, so parsing is defensive:
    - `events` is read from the top-level `events` list; entries that aren't objects are dropped.
    - `shutdown_reason` is the top-level value, else the last `system.shutdown` event's.
    - `transcript` is the top-level list, else the last `application.transcription_ready`
      event's `properties.transcript`; entries that aren't objects are dropped. It may start
      with the full system prompt (role "system"): filter before showing or storing it.
    """

    shutdown_reason: LenientStr = None
    events: list[ConversationEvent] = Field(default_factory=list)
    transcript: list[dict[str, Any]] | None = None

    @model_validator(mode="before")
    @classmethod
    def _gather_verbose_fields(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        raw_events = data.get("events")
        events = (
            [e for e in raw_events if isinstance(e, dict)] if isinstance(raw_events, list) else []
        )
        data["events"] = events

        reason = data.get("shutdown_reason")
        if not isinstance(reason, str) or not reason:
            reason = _last_event_property(events, SHUTDOWN, "shutdown_reason")
        data["shutdown_reason"] = reason if isinstance(reason, str) and reason else None

        transcript = data.get("transcript")
        if not isinstance(transcript, list):
            transcript = _last_event_property(events, TRANSCRIPTION_READY, "transcript")
        data["transcript"] = (
            [turn for turn in transcript if isinstance(turn, dict)]
            if isinstance(transcript, list)
            else None
        )
        return data


class ConversationPage(BaseModel):
    """`GET /v2/conversations`: one page of conversations and the total matching the filter.

    Entries without a usable `conversation_id` are dropped (nothing can be done with them);
    a missing `total_count` defaults to the number of entries on the page.
    """

    model_config = _RESPONSE_CONFIG

    data: list[Conversation] = Field(default_factory=list)
    total_count: int = Field(default=0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _drop_unusable_entries(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        return _drop_entries_without("conversation_id", data)
        data = dict(data)
        raw = data.get("data")
        entries = (
            [
                e
                for e in raw
                if isinstance(e, dict)
                and isinstance(e.get("conversation_id"), str)
                and e["conversation_id"]
            ]
            if isinstance(raw, list)
            else []
        )
        data["data"] = entries
        total = data.get("total_count")
        if isinstance(total, str) and total.strip().isdigit():
            total = int(total)
        if not isinstance(total, int) or isinstance(total, bool) or total < 0:
            total = len(entries)
        data["total_count"] = total
        return data


# --- personas, replicas, memory stores --------------------------------------------------------

#: Perception models that give a post-call visual analysis (`application.perception_analysis`).
ANALYSING_PERCEPTION_MODELS = frozenset({"raven-0", "raven-1"})
#: Replica statuses in which conversations can use it (`completed`; training callbacks say
#: `ready`).
READY_REPLICA_STATUSES = frozenset({"completed", "ready"})


def _drop_entries_without(key: str, data: Any) -> Any:
    """A list answer as `{data, total_count}`: accepts a bare list, drops entries without a
    usable `key`, defaults a missing or bad `total_count` to the number of entries."""
    if isinstance(data, list):
        data = {"data": data}
    if not isinstance(data, dict):
        return data
    data = dict(data)
    raw = data.get("data")
    entries = (
        [e for e in raw if isinstance(e, dict) and isinstance(e.get(key), str) and e[key]]
        if isinstance(raw, list)
        else []
    )
    data["data"] = entries
    total = data.get("total_count")
    if isinstance(total, str) and total.strip().isdigit():
        total = int(total)
    if not isinstance(total, int) or isinstance(total, bool) or total < 0:
        total = len(entries)
    data["total_count"] = total
    return data


class Persona(BaseModel):
    """`GET /v2/pals/{id}` (formerly `/v2/personas/{id}`): the parts the service looks at."""

    model_config = _RESPONSE_CONFIG

    persona_id: str = Field(min_length=1)
    persona_name: LenientStr = None
    #: `user` (the account's own) or `system` (Tavus's stock personas).
    persona_type: LenientStr = None
    default_replica_id: LenientStr = None
    #: The operator's prompt: long and not ours to log.
    system_prompt: LenientStr = Field(default=None, repr=False)
    layers: dict[str, Any] = Field(default_factory=dict, repr=False)
    created_at: LenientDatetime = None

    @model_validator(mode="before")
    @classmethod
    def _layers_must_be_a_dict(cls, data: Any) -> Any:
        if isinstance(data, dict) and not isinstance(data.get("layers"), dict):
            data = {**data, "layers": {}}
        return data

    @property
    def perception_model(self) -> str | None:
        """`layers.perception.perception_model` (e.g. `raven-1`), or None when unset."""
        perception = self.layers.get("perception")
        model = perception.get("perception_model") if isinstance(perception, dict) else None
        return model if isinstance(model, str) and model else None

    @property
    def analyses_perception(self) -> bool:
        """Whether its conversations end with an `application.perception_analysis`."""
        return self.perception_model in ANALYSING_PERCEPTION_MODELS


class Replica(BaseModel):
    """`GET /v2/faces/{id}` (formerly `/v2/replicas/{id}`): the parts the service looks at."""

    model_config = _RESPONSE_CONFIG

    replica_id: str = Field(min_length=1)
    replica_name: LenientStr = None
    #: `started` (training), `completed` or `error`.
    status: LenientStr = None
    #: e.g. "100/100".
    training_progress: LenientStr = None
    replica_type: LenientStr = None
    created_at: LenientDatetime = None

    @property
    def is_ready(self) -> bool:
        """Whether conversations can use it (training finished without error)."""
        return self.status in READY_REPLICA_STATUSES


class MemoryStore(BaseModel):
    """One entry of `GET /v2/memory-stores`: a persona's memory of one participant."""

    model_config = _RESPONSE_CONFIG

    memory_store_id: str = Field(min_length=1)
    pal_id: LenientStr = None
    participant_tag: LenientStr = None
    created_at: LenientDatetime = None
    updated_at: LenientDatetime = None


class MemoryStorePage(BaseModel):
    """`GET /v2/memory-stores`: the caller's stores matching the filters.

    Tavus documents the filters and `memory_store_id` but not the envelope, so both
    `{"data": [...], "total_count": n}` and a bare list are accepted; entries without a
    `memory_store_id` are dropped (nothing can be done with them).
    """

    model_config = _RESPONSE_CONFIG

    data: list[MemoryStore] = Field(default_factory=list)
    total_count: int = Field(default=0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _drop_unusable_entries(cls, data: Any) -> Any:
        return _drop_entries_without("memory_store_id", data)
