"""The simulated Memory Stores endpoints (Tavus's "Memory Stores" API); the model is in
memory.py.

- ``POST /v2/memory-stores`` ``{pal_id, participant_tag, pinned_memories?}`` → the store
  (``409`` when the persona and tag already have an active one).
- ``GET /v2/memory-stores[?pal_id=&participant_tag=&limit=&page=]`` →
  ``{data: [{memory_store_id, pal_id, participant_tag, created_at, updated_at}], total_count}``.
- ``GET /v2/memory-stores/{id}`` → the store with ``pinned_memories`` and
  ``learned_memories`` (``[{content, conversation_id, created_at}]``).
- ``DELETE /v2/memory-stores/{id}`` → ``204``; an unknown (or already deleted) id is ``404``.

Tavus documents the request fields, the list filters, ``memory_store_id`` and the delete
statuses; the envelope of the list, the field name ``learned_memories`` and the 409 are the
simulator's choices. The 403 "not the caller's store" cannot happen: the simulator has one
account.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, StringConstraints

from tavus_sim.catalog import UnknownId
from tavus_sim.handling import ApiError, guarded, page_of, parse_body
from tavus_sim.memory import MemoryStore, StoreExists
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


def _not_found() -> ApiError:
    return ApiError("Memory store not found", status_code=404)


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
            store = runtime.memory.create(body.pal_id, body.participant_tag, body.pinned_memories)
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
            request.query_params.get("pal_id"), request.query_params.get("participant_tag")
        )
        return page_of(request, stores, MemoryStore.summary_json)

    return await guarded(request, "memory_stores", action)


@router.get("/{memory_store_id}")
async def get_memory_store(request: Request, memory_store_id: str) -> Response:
    """One store with its pinned and learned memories."""

    async def action(runtime: SimRuntime) -> Response:
        store = runtime.memory.stores.get(memory_store_id)
        if store is None:
            raise _not_found()
        return JSONResponse(store.to_json())

    return await guarded(request, "memory_stores", action)


@router.delete("/{memory_store_id}")
async def delete_memory_store(request: Request, memory_store_id: str) -> Response:
    """Delete a store for good; later conversations with its tag start a new one."""

    async def action(runtime: SimRuntime) -> Response:
        if not runtime.memory.delete(memory_store_id):
            raise _not_found()
        return Response(status_code=204)

    return await guarded(request, "memory_stores", action)
