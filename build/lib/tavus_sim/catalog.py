"""The simulated account's personas (PALs) and replicas (Faces).

The catalogue starts with a few seeded entries so that the ids the service and its tests use
out of the box exist (``GET /v2/personas/{id}`` answers them, as Pipecat's transport and
``facetoface doctor`` expect):

- persona ``pcb7a34da5fe`` and replica ``r90bbd427f71``: Tavus's stock ids from its quickstart,
  the service's development defaults (``facetoface.config.DEV_PERSONA_ID``/``DEV_REPLICA_ID``).
  The persona is also the default one a replica-only create uses.
- persona ``p0000default`` and replica ``r0000default``: the account's own sample mentor, the
  defaults the test suite configures.

Both seeded personas have a Raven perception model, so their conversations end with an
``application.perception_analysis`` callback; a persona created with
``layers.perception.perception_model`` ``off`` (or ``basic``) gets none.

Ids Tavus does not know: Tavus answers a create that names an unknown persona or replica with
400. The simulator by default *adopts* them instead (registers a user persona/replica under
that id, with a Raven perception model and the default replica), so an app that uses its real
Tavus ids works offline unchanged; ``SimConfig.unknown_ids = "reject"`` answers 400 like
Tavus.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from tavus_sim.state import isoformat, utcnow

Kind = Literal["user", "system"]

#: Perception models that produce a post-call visual analysis (Tavus's Raven family).
ANALYSING_PERCEPTION_MODELS = frozenset({"raven-0", "raven-1"})
#: What a persona created without a perception layer gets: Tavus's changelog names raven-1 its
#: default perception model.
DEFAULT_PERCEPTION_MODEL = "raven-1"

STOCK_PERSONA_ID = "pcb7a34da5fe"
STOCK_REPLICA_ID = "r90bbd427f71"
SAMPLE_PERSONA_ID = "p0000default"
SAMPLE_REPLICA_ID = "r0000default"

_STOCK_PROMPT = (
    "You are a warm, attentive mentor. Keep answers short and concrete, and use what you "
    "know about the person."
)


def new_persona_id() -> str:
    """A fresh persona id: ``p`` followed by 12 hex characters, like Tavus's."""
    return "p" + secrets.token_hex(6)


def new_replica_id() -> str:
    """A fresh replica id: ``r`` followed by 12 hex characters, like Tavus's."""
    return "r" + secrets.token_hex(6)


@dataclass(slots=True)
class Persona:
    """A persona (PAL): behaviour, prompt and layers."""

    persona_id: str
    persona_name: str
    persona_type: Kind
    system_prompt: str | None
    context: str | None
    default_replica_id: str | None
    layers: dict[str, Any]
    pipeline_mode: str = "full"
    document_ids: list[str] = field(default_factory=list)
    document_tags: list[str] = field(default_factory=list)
    extra_fields: dict[str, Any] = field(default_factory=dict)
    """Create fields the simulator does not model, echoed back by GET."""
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)

    @property
    def perception_model(self) -> str | None:
        """``layers.perception.perception_model``, or ``None`` when none is set."""
        perception = self.layers.get("perception")
        if isinstance(perception, dict):
            model = perception.get("perception_model")
            if isinstance(model, str) and model:
                return model
        return None

    @property
    def analyses_perception(self) -> bool:
        """Whether conversations with this persona end with a perception analysis."""
        return self.perception_model in ANALYSING_PERCEPTION_MODELS

    def to_json(self) -> dict[str, Any]:
        """The persona as ``GET /v2/personas/{id}`` shows it."""
        return {
            **self.extra_fields,
            "persona_id": self.persona_id,
            "persona_name": self.persona_name,
            "persona_type": self.persona_type,
            "pipeline_mode": self.pipeline_mode,
            "system_prompt": self.system_prompt,
            "context": self.context,
            "default_replica_id": self.default_replica_id,
            "document_ids": list(self.document_ids),
            "document_tags": list(self.document_tags),
            "layers": self.layers,
            "created_at": isoformat(self.created_at),
            "updated_at": isoformat(self.updated_at),
        }


@dataclass(slots=True)
class Replica:
    """A replica (Face): the likeness and default voice.

    A replica created through the API trains for ``training_s`` (real) seconds: ``started``
    until then, ``completed`` after. Seeded and adopted replicas are trained already.
    """

    replica_id: str
    replica_name: str
    replica_type: Kind
    training_s: float = 0.0
    train_video_url: str | None = None
    callback_url: str | None = None
    extra_fields: dict[str, Any] = field(default_factory=dict)
    created_at: datetime = field(default_factory=utcnow)

    @property
    def status(self) -> str:
        """``started`` while training, then ``completed`` (Tavus's replica statuses)."""
        return "completed" if self._progress() >= 1.0 else "started"

    @property
    def ready(self) -> bool:
        """Whether conversations can use this replica."""
        return self.status == "completed"

    def _progress(self) -> float:
        if self.training_s <= 0:
            return 1.0
        elapsed = (utcnow() - self.created_at).total_seconds()
        return min(1.0, max(0.0, elapsed / self.training_s))

    def to_json(self, *, verbose: bool) -> dict[str, Any]:
        """The replica as ``GET /v2/replicas`` shows it (``replica_type`` only when verbose)."""
        out: dict[str, Any] = {
            **self.extra_fields,
            "replica_id": self.replica_id,
            "replica_name": self.replica_name,
            "thumbnail_video_url": f"https://sim.invalid/replicas/{self.replica_id}.mp4",
            "training_progress": f"{int(self._progress() * 100)}/100",
            "status": self.status,
            "created_at": isoformat(self.created_at),
        }
        if verbose:
            out["replica_type"] = self.replica_type
        return out


def _perception(model: str | None) -> dict[str, Any]:
    return {"perception": {"perception_model": model}} if model else {}


def _seed_personas() -> dict[str, Persona]:
    entries = [
        Persona(
            persona_id=STOCK_PERSONA_ID,
            persona_name="Stock Mentor",
            persona_type="system",
            system_prompt=_STOCK_PROMPT,
            context=None,
            default_replica_id=STOCK_REPLICA_ID,
            layers=_perception("raven-1"),
        ),
        Persona(
            persona_id=SAMPLE_PERSONA_ID,
            persona_name="Sample Mentor",
            persona_type="user",
            system_prompt=_STOCK_PROMPT,
            context=None,
            default_replica_id=SAMPLE_REPLICA_ID,
            layers=_perception("raven-0"),
        ),
    ]
    return {entry.persona_id: entry for entry in entries}


def _seed_replicas() -> dict[str, Replica]:
    entries = [
        Replica(replica_id=STOCK_REPLICA_ID, replica_name="Anna", replica_type="system"),
        Replica(replica_id=SAMPLE_REPLICA_ID, replica_name="Sample Face", replica_type="user"),
    ]
    return {entry.replica_id: entry for entry in entries}


class UnknownId(Exception):
    """A create named a persona or replica the account does not have."""

    def __init__(self, field_name: str) -> None:
        super().__init__(f"Invalid {field_name}")
        self.field_name = field_name


class Catalog:
    """Personas and replicas of the simulated account."""

    def __init__(self) -> None:
        self.personas: dict[str, Persona] = _seed_personas()
        self.replicas: dict[str, Replica] = _seed_replicas()

    def reset(self) -> None:
        """Back to the seeded entries only."""
        self.personas = _seed_personas()
        self.replicas = _seed_replicas()

    def persona(
        self,
        persona_id: str,
        *,
        adopt: bool,
        default_replica_id: str,
        field_name: str = "persona_id",
    ) -> Persona:
        """The persona with this id; an unknown one is adopted or refused (``UnknownId``)."""
        found = self.personas.get(persona_id)
        if found is not None:
            return found
        if not adopt:
            raise UnknownId(field_name)
        adopted = Persona(
            persona_id=persona_id,
            persona_name=f"Adopted persona {persona_id}",
            persona_type="user",
            system_prompt=_STOCK_PROMPT,
            context=None,
            default_replica_id=default_replica_id,
            layers=_perception(DEFAULT_PERCEPTION_MODEL),
        )
        self.personas[persona_id] = adopted
        return adopted

    def replica(self, replica_id: str, *, adopt: bool, field_name: str = "replica_id") -> Replica:
        """The replica with this id; an unknown one is adopted or refused (``UnknownId``)."""
        found = self.replicas.get(replica_id)
        if found is not None:
            return found
        if not adopt:
            raise UnknownId(field_name)
        adopted = Replica(
            replica_id=replica_id,
            replica_name=f"Adopted replica {replica_id}",
            replica_type="user",
        )
        self.replicas[replica_id] = adopted
        return adopted

    def add_persona(self, persona: Persona) -> None:
        """Register a persona created through the API."""
        self.personas[persona.persona_id] = persona

    def add_replica(self, replica: Replica) -> None:
        """Register a replica created through the API."""
        self.replicas[replica.replica_id] = replica
