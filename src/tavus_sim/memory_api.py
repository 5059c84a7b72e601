"""The simulated Memory Stores endpoints (Tavus's "Memory Stores" API); the model is in
memory.py.

- ``POST /v2/memory-stores`` ``{pal_id, participant_tag, pinned_memories?: string[]}`` → the
  store (``409`` when the persona and tag already have an active one in this account).
- ``GET /v2/memory-stores[?pal_id=&participant_tag=&limit=&page=]`` → the caller's stores,
  ``{data: [{memory_store_id, pal_id, participant_tag, created_at, updated_at}], total_count}``.
- ``GET /v2/memory-stores/{id}`` → the store with ``pinned_memories`` (their texts, as on
  create), ``pinned`` (``[{memory_id, memory, created_at}]``) and ``learned_memories``
  (``[{content, conversation_id, created_at}]``).
- ``DELETE /v2/memory-stores/{id}`` → ``204``.
- ``POST /v2/memory-stores/{id}/pinned`` ``{memory}`` → the pinned memory
  ``{memory_id, memory, created_at}``; ``GET …/pinned`` → ``{data: [...]}``;
  ``DELETE …/pinned/{memory_id}`` → ``204`` (``404`` unknown memory).
- ``GET /v2/memory-stores/{id}/learned[?type=profile|timeline]`` →
  ``{memory_store_id, profile: {fact: value}}``, ``{memory_store_id, timeline:
  {recent_conversations: [{conversation_id, ended_at, summary}]}}``, or both without ``type``.

Every route on one store: ``404`` when unknown (or deleted), ``403`` when another API key's
account owns it (``SimConfig.other_api_keys`` are the other accounts).

Tavus documents the request fields, the list filters, ``memory_store_id``, the delete
statuses, the 403 and the ``learned`` types with ``profile`` (an object) and
``timeline.recent_conversations[].summary``; the envelopes, ``learned_memories``, the pinned
memories' ids and ``DELETE …/pinned/{memory_id}``, and the 409 are the simulator's choices.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, StringConstraints

from tavus_sim.catalog import UnknownId
from tavus_sim.gate import account_of
from tavus_sim.handling import ApiError, choice_param, guarded, page_of, parse_body
from tavus_sim.memory import MAX_PINNED, MemoryStore, StoreExists, TooManyPinned
from tavus_sim.responses import JSONResponse
from tavus_sim.runtime import SimRuntime

router = APIRouter(prefix="/v2/memory-stores")

NonEmptyStr = Annotated[str, StringConstraints(min_length=1)]


class MemoryStoreBody(BaseModel):
    """Body of ``POST /v2/memory-stores``. Unknown keys are accepted and ignored."""

    model_config = ConfigDict(extra="allow", strict=True)
    pal_id: NonEmptyStr
    participant_tag: NonEmptyStr
    pinned_memories: list[NonEmptyStr] | None = None


class PinnedBody(BaseModel):
    """Body of ``POST /v2/memory-stores/{id}/pinned``."""

    model_config = ConfigDict(extra="forbid", strict=True)
    memory: Annotated[str, StringConstraints(min_length=1, max_length=2000)]


def _not_found() -> ApiError:
    return ApiError("Memory store not found", status_code=404)


def _owned(runtime: SimRuntime, request: Request, memory_store_id: str) -> MemoryStore:
    """The caller's store, or 404 (unknown) / 403 (another account's)."""
    store = runtime.memory.stores.get(memory_store_id)
    if store is None:
        raise _not_found()
    if store.account != account_of(request):
        raise ApiError("You do not have access to this memory store", status_code=403)
    return store


@router.post("")
async def create_memory_store(request: Request) -> Response:
    """Create the store of one persona and participant tag (e.g. to pin memories early)."""
    raw = await request.body()

    async def action(runtime: SimRuntime) -> Response:
        body = parse_body(MemoryStoreBody, raw)
        config = runtime.config
        try:
            runtime.catalog.persona(
                body.pal_id,
                adopt=config.unknown_ids == "adopt",
                default_replica_id=config.default_replica_id,
                field_name="pal_id",
            )
        except UnknownId as exc:
            raise ApiError(str(exc)) from None
        try:
            if len(body.pinned_memories or []) > MAX_PINNED:
                raise ApiError(f"At most {MAX_PINNED} pinned memories")
            store = runtime.memory.create(
                account_of(request), body.pal_id, body.participant_tag, body.pinned_memories
            )
        except StoreExists:
            raise ApiError(
                "A memory store already exists for this pal_id and participant_tag",
                status_code=409,
            ) from None
        return JSONResponse(store.to_json())

    return await guarded(request, "memory_stores", action)


@router.get("")
async def list_memory_stores(request: Request) -> Response:
    """The account's stores, filtered by ``pal_id`` and/or ``participant_tag``."""

    async def action(runtime: SimRuntime) -> Response:
        stores = runtime.memory.matching(
            account_of(request),
            request.query_params.get("pal_id"),
            request.query_params.get("participant_tag"),
        )
        return page_of(request, stores, MemoryStore.summary_json)

    return await guarded(request, "memory_stores", action)


@router.get("/{memory_store_id}")
async def get_memory_store(request: Request, memory_store_id: str) -> Response:
    """One store with its pinned and learned memories."""

    async def action(runtime: SimRuntime) -> Response:
        return JSONResponse(_owned(runtime, request, memory_store_id).to_json())

    return await guarded(request, "memory_stores", action)


@router.delete("/{memory_store_id}")
async def delete_memory_store(request: Request, memory_store_id: str) -> Response:
    """Delete a store for good; later conversations with its tag start a new one."""

    async def action(runtime: SimRuntime) -> Response:
        runtime.memory.delete(_owned(runtime, request, memory_store_id).memory_store_id)
        return Response(status_code=204)

    return await guarded(request, "memory_stores", action)


@router.post("/{memory_store_id}/pinned")
async def pin_memory(request: Request, memory_store_id: str) -> Response:
    """Pin a fact to a store; the mentor keeps it in mind from the next conversation on."""
    raw = await request.body()

    async def action(runtime: SimRuntime) -> Response:
        store = _owned(runtime, request, memory_store_id)
        body = parse_body(PinnedBody, raw)
        try:
            pinned = store.pin(body.memory)
        except TooManyPinned:
            raise ApiError(f"At most {MAX_PINNED} pinned memories") from None
        return JSONResponse(pinned.to_json())

    return await guarded(request, "memory_stores", action)


@router.get("/{memory_store_id}/pinned")
async def list_pinned(request: Request, memory_store_id: str) -> Response:
    """A store's pinned memories, oldest first."""

    async def action(runtime: SimRuntime) -> Response:
        store = _owned(runtime, request, memory_store_id)
        return JSONResponse({"data": [item.to_json() for item in store.pinned]})

    return await guarded(request, "memory_stores", action)


@router.delete("/{memory_store_id}/pinned/{memory_id}")
async def unpin_memory(request: Request, memory_store_id: str, memory_id: str) -> Response:
    """Remove one pinned memory."""

    async def action(runtime: SimRuntime) -> Response:
        if not _owned(runtime, request, memory_store_id).unpin(memory_id):
            raise ApiError("Pinned memory not found", status_code=404)
        return Response(status_code=204)

    return await guarded(request, "memory_stores", action)


@router.get("/{memory_store_id}/learned")
async def learned_memory(request: Request, memory_store_id: str) -> Response:
    """What the store learned from ended conversations: a profile and/or a timeline."""

    async def action(runtime: SimRuntime) -> Response:
        kind = choice_param(request, "type", ("profile", "timeline"))
        store = _owned(runtime, request, memory_store_id)
        out: dict[str, Any] = {"memory_store_id": store.memory_store_id}
        if kind in (None, "profile"):
            out["profile"] = store.profile()
        if kind in (None, "timeline"):
            out["timeline"] = store.timeline()
        return JSONResponse(out)

    return await guarded(request, "memory_stores", action)
