"""The simulated persona (PAL) and replica (Face) endpoints.

Each route is served under both names, as Tavus's newer aliases are: ``/v2/personas`` and
``/v2/pals``, ``/v2/replicas`` and ``/v2/faces``, with the same bodies and ids.

- ``GET /v2/personas[?limit=&page=&persona_type=user|system]`` (``pal_type`` too) →
  ``{data, total_count}``; ``GET /v2/personas/{id}``; ``POST /v2/personas`` →
  ``{persona_id, persona_name, created_at}``; ``PATCH /v2/personas/{id}`` with a JSON Patch
  (RFC 6902) → the persona; ``DELETE /v2/personas/{id}`` → 204.
- ``GET /v2/replicas[?limit=&page=&verbose=&replica_type=&replica_ids=a,b]`` (``face_type``
  too, as ``/v2/faces?face_type=system`` lists the stock faces) → ``{data, total_count}``
  (``replica_type`` only with ``verbose=true``);
  ``GET /v2/replicas/{id}``; ``POST /v2/replicas`` ``{train_video_url, replica_name?, …}`` →
  ``{replica_id, status}``; ``DELETE /v2/replicas/{id}`` → 204.

Choices where Tavus documents nothing: an unknown id is ``404 {"message": "… not found"}``;
deleting or patching a stock (system) entry is ``403``; a patch that touches the id, type or
times, or leaves an invalid persona, is a 400 and changes nothing; unknown create fields are
accepted and echoed by GET; ``system_prompt`` is required in the ``full`` pipeline mode, as
the persona guide says.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, StringConstraints

from tavus_sim import json_patch
from tavus_sim.catalog import (
    DEFAULT_PERCEPTION_MODEL,
    Persona,
    Replica,
    UnknownId,
    new_persona_id,
    new_replica_id,
)
from tavus_sim.handling import (
    ApiError,
    bool_param,
    choice_param,
    guarded,
    page_of,
    parse_body,
)
from tavus_sim.responses import JSONResponse
from tavus_sim.runtime import SimRuntime
from tavus_sim.state import isoformat, utcnow

router = APIRouter(prefix="/v2")

NonEmptyStr = Annotated[str, StringConstraints(min_length=1)]
_KINDS = ("user", "system")
_READ_ONLY_PERSONA_FIELDS = frozenset({"persona_id", "persona_type", "created_at", "updated_at"})


class PerceptionLayer(BaseModel):
    """``layers.perception`` of a persona; other perception settings are kept as given."""

    model_config = ConfigDict(extra="allow", strict=True)
    perception_model: NonEmptyStr | None = None


class PersonaLayers(BaseModel):
    """``layers`` of a persona: ``llm``, ``tts``, ``stt``, ``perception``, … objects."""

    model_config = ConfigDict(extra="allow", strict=True)
    llm: dict[str, Any] | None = None
    tts: dict[str, Any] | None = None
    stt: dict[str, Any] | None = None
    perception: PerceptionLayer | None = None
    conversational_flow: dict[str, Any] | None = None


class PersonaBody(BaseModel):
    """Body of ``POST /v2/personas``. Unknown keys are accepted and kept."""

    model_config = ConfigDict(extra="allow", strict=True)
    persona_name: str | None = None
    system_prompt: str | None = None
    context: str | None = None
    default_replica_id: NonEmptyStr | None = None
    pipeline_mode: Literal["full", "echo"] | None = None
    layers: PersonaLayers | None = None
    document_ids: list[str] | None = None
    document_tags: list[str] | None = None


class ReplicaBody(BaseModel):
    """Body of ``POST /v2/replicas``. Unknown keys are accepted and kept."""

    model_config = ConfigDict(extra="allow", strict=True)
    train_video_url: NonEmptyStr
    replica_name: str | None = None
    callback_url: str | None = None
    consent_video_url: str | None = None


def _not_found(what: str) -> ApiError:
    return ApiError(f"{what} not found", status_code=404)


# ---------------------------------------------------------------------- personas


async def list_personas(request: Request) -> Response:
    """A page of the account's personas, optionally only ``user`` or ``system`` ones."""

    async def action(runtime: SimRuntime) -> Response:
        kind = choice_param(request, "persona_type", _KINDS) or choice_param(
            request, "pal_type", _KINDS
        )
        personas = [
            persona
            for persona in runtime.catalog.personas.values()
            if kind is None or persona.persona_type == kind
        ]
        return page_of(request, personas, Persona.to_json)

    return await guarded(request, "personas", action)


async def get_persona(request: Request, persona_id: str) -> Response:
    """One persona."""

    async def action(runtime: SimRuntime) -> Response:
        persona = runtime.catalog.personas.get(persona_id)
        if persona is None:
            raise _not_found("Persona")
        return JSONResponse(persona.to_json())

    return await guarded(request, "personas", action)


async def create_persona(request: Request) -> Response:
    """Create a user persona."""
    raw = await request.body()

    async def action(runtime: SimRuntime) -> Response:
        body = parse_body(PersonaBody, raw)
        mode = body.pipeline_mode or "full"
        if mode == "full" and not body.system_prompt:
            raise ApiError("system_prompt is required when pipeline_mode is full")
        catalog = runtime.catalog
        if body.default_replica_id is not None:
            try:
                catalog.replica(
                    body.default_replica_id,
                    adopt=runtime.config.unknown_ids == "adopt",
                    field_name="default_replica_id",
                )
            except UnknownId as exc:
                raise ApiError(str(exc)) from None
        layers = body.layers.model_dump(exclude_none=True) if body.layers else {}
        perception = layers.setdefault("perception", {})
        perception.setdefault("perception_model", DEFAULT_PERCEPTION_MODEL)
        persona_id = new_persona_id()
        while persona_id in catalog.personas:
            persona_id = new_persona_id()
        persona = Persona(
            persona_id=persona_id,
            persona_name=body.persona_name or "New Persona",
            persona_type="user",
            system_prompt=body.system_prompt,
            context=body.context,
            default_replica_id=body.default_replica_id,
            layers=layers,
            pipeline_mode=mode,
            document_ids=list(body.document_ids or []),
            document_tags=list(body.document_tags or []),
            extra_fields=dict(body.model_extra or {}),
        )
        catalog.add_persona(persona)
        return JSONResponse(
            {
                "persona_id": persona.persona_id,
                "persona_name": persona.persona_name,
                "created_at": isoformat(persona.created_at),
            }
        )

    return await guarded(request, "personas", action)


def _editable(persona: Persona) -> dict[str, Any]:
    """The persona's fields a patch may change (with those the simulator does not model)."""
    return {
        **persona.extra_fields,
        "persona_name": persona.persona_name,
        "system_prompt": persona.system_prompt,
        "context": persona.context,
        "default_replica_id": persona.default_replica_id,
        "pipeline_mode": persona.pipeline_mode,
        "layers": persona.layers,
        "document_ids": list(persona.document_ids),
        "document_tags": list(persona.document_tags),
    }


async def patch_persona(request: Request, persona_id: str) -> Response:
    """Change a user persona with a JSON Patch; the result is validated like a create."""
    raw = await request.body()

    async def action(runtime: SimRuntime) -> Response:
        persona = runtime.catalog.personas.get(persona_id)
        if persona is None:
            raise _not_found("Persona")
        if persona.persona_type == "system":
            raise ApiError("Stock personas cannot be changed", status_code=403)
        try:
            patched = json_patch.apply(_editable(persona), json.loads(raw or b"null"))
        except (ValueError, json_patch.PatchError) as exc:
            raise ApiError(f"Invalid patch: {exc}") from None
        if not isinstance(patched, dict) or _READ_ONLY_PERSONA_FIELDS & set(patched):
            raise ApiError("Invalid patch: only the persona's own settings can change")
        body = parse_body(PersonaBody, json.dumps(patched).encode())
        if (body.pipeline_mode or "full") == "full" and not body.system_prompt:
            raise ApiError("system_prompt is required when pipeline_mode is full")
        persona.persona_name = body.persona_name or persona.persona_name
        persona.system_prompt = body.system_prompt
        persona.context = body.context
        persona.default_replica_id = body.default_replica_id
        persona.pipeline_mode = body.pipeline_mode or "full"
        persona.layers = body.layers.model_dump(exclude_none=True) if body.layers else {}
        persona.document_ids = list(body.document_ids or [])
        persona.document_tags = list(body.document_tags or [])
        persona.extra_fields = dict(body.model_extra or {})
        persona.updated_at = utcnow()
        return JSONResponse(persona.to_json())

    return await guarded(request, "personas", action)


async def delete_persona(request: Request, persona_id: str) -> Response:
    """Delete a user persona (stock ones cannot be deleted)."""

    async def action(runtime: SimRuntime) -> Response:
        persona = runtime.catalog.personas.get(persona_id)
        if persona is None:
            raise _not_found("Persona")
        if persona.persona_type == "system":
            raise ApiError("Stock personas cannot be deleted", status_code=403)
        del runtime.catalog.personas[persona_id]
        return Response(status_code=204)

    return await guarded(request, "personas", action)


# ---------------------------------------------------------------------- replicas


async def list_replicas(request: Request) -> Response:
    """A page of the account's replicas (``replica_ids=a,b`` and ``replica_type`` filter)."""

    async def action(runtime: SimRuntime) -> Response:
        kind = choice_param(request, "replica_type", _KINDS) or choice_param(
            request, "face_type", _KINDS
        )
        verbose = bool_param(request, "verbose")
        raw_ids = request.query_params.get("replica_ids")
        wanted = {item.strip() for item in raw_ids.split(",") if item.strip()} if raw_ids else None
        replicas = [
            replica
            for replica in runtime.catalog.replicas.values()
            if (kind is None or replica.replica_type == kind)
            and (wanted is None or replica.replica_id in wanted)
        ]
        return page_of(request, replicas, lambda replica: replica.to_json(verbose=verbose))

    return await guarded(request, "replicas", action)


async def get_replica(request: Request, replica_id: str) -> Response:
    """One replica."""

    async def action(runtime: SimRuntime) -> Response:
        verbose = bool_param(request, "verbose")
        replica = runtime.catalog.replicas.get(replica_id)
        if replica is None:
            raise _not_found("Replica")
        return JSONResponse(replica.to_json(verbose=verbose))

    return await guarded(request, "replicas", action)


async def create_replica(request: Request) -> Response:
    """Start training a user replica (it is ``completed`` after ``replica_training_ms``)."""
    raw = await request.body()

    async def action(runtime: SimRuntime) -> Response:
        body = parse_body(ReplicaBody, raw)
        if not body.train_video_url.startswith(("http://", "https://")):
            raise ApiError("train_video_url must be an absolute http(s) URL")
        catalog = runtime.catalog
        replica_id = new_replica_id()
        while replica_id in catalog.replicas:
            replica_id = new_replica_id()
        config = runtime.config
        replica = Replica(
            replica_id=replica_id,
            replica_name=body.replica_name or "New Replica",
            replica_type="user",
            training_s=config.scaled(config.replica_training_ms / 1000),
            train_video_url=body.train_video_url,
            callback_url=body.callback_url,
            extra_fields=dict(body.model_extra or {}),
        )
        catalog.add_replica(replica)
        return JSONResponse({"replica_id": replica.replica_id, "status": replica.status})

    return await guarded(request, "replicas", action)


async def delete_replica(request: Request, replica_id: str) -> Response:
    """Delete a user replica (stock ones cannot be deleted)."""

    async def action(runtime: SimRuntime) -> Response:
        replica = runtime.catalog.replicas.get(replica_id)
        if replica is None:
            raise _not_found("Replica")
        if replica.replica_type == "system":
            raise ApiError("Stock replicas cannot be deleted", status_code=403)
        del runtime.catalog.replicas[replica_id]
        return Response(status_code=204)

    return await guarded(request, "replicas", action)


# Both names of each collection (Tavus's PAL/Face aliases), same handlers.
for _collection in ("personas", "pals"):
    router.add_api_route(f"/{_collection}", list_personas, methods=["GET"])
    router.add_api_route(f"/{_collection}", create_persona, methods=["POST"])
    router.add_api_route(f"/{_collection}/{{persona_id}}", get_persona, methods=["GET"])
    router.add_api_route(f"/{_collection}/{{persona_id}}", patch_persona, methods=["PATCH"])
    router.add_api_route(f"/{_collection}/{{persona_id}}", delete_persona, methods=["DELETE"])
for _collection in ("replicas", "faces"):
    router.add_api_route(f"/{_collection}", list_replicas, methods=["GET"])
    router.add_api_route(f"/{_collection}", create_replica, methods=["POST"])
    router.add_api_route(f"/{_collection}/{{replica_id}}", get_replica, methods=["GET"])
    router.add_api_route(f"/{_collection}/{{replica_id}}", delete_replica, methods=["DELETE"])
