"""Settings of the Tavus simulator.

Every knob is a field of :class:`SimConfig`. Most can be changed while the simulator runs
(``PUT /_sim/config``); ``POST /_sim/reset`` restores the values the app was created with.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class SimConfig(BaseModel):
    """Configuration of one simulator instance.

    Durations that model Tavus's own timers (replica join, ``max_call_duration``,
    ``participant_left_timeout``, ``participant_absent_timeout``) are divided by
    ``time_scale``; network-ish delays (``latency_ms``, callback settings) are not, because
    they model the wire, not the call.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    api_key: str = Field(default="sim-key", min_length=1)
    """The simulated account's ``x-api-key``."""

    other_api_keys: list[str] = Field(default_factory=list)
    """Keys of other accounts the API also accepts. Only Memory Stores are kept apart by
    account (another account's store is a 403); everything else is shared."""

    concurrency_limit: int | None = Field(default=10, ge=0)
    """Maximum number of ``active`` conversations; ``None`` means unlimited."""

    latency_ms: int = Field(default=0, ge=0)
    """Added before answering every ``/v2`` call."""

    replica_join_delay_ms: int = Field(default=300, ge=0)
    """Time from create to the ``system.replica_joined`` callback (scaled)."""

    conversation_url_base: str | None = None
    """Public base URL of the simulator, used for ``conversation_url``
    (``{base}/rooms/{conversation_id}``). ``None``: the base URL the API request came in on."""

    default_max_call_duration: int = Field(default=3600, ge=1)
    default_participant_left_timeout: int = Field(default=0, ge=0)
    default_participant_absent_timeout: int = Field(default=300, ge=1)

    max_call_duration_cap: int | None = Field(default=3600, ge=1)
    """Plan cap: larger ``max_call_duration`` values are silently lowered, as Tavus is
    reported to do. ``None`` disables the cap."""

    default_persona_id: str = "pcb7a34da5fe"
    """Persona a replica-only create uses (Tavus: "the default Tavus persona"); a seeded
    stock persona with a Raven perception model (catalog.py)."""

    default_replica_id: str = "r90bbd427f71"
    """Default replica of personas the simulator adopts (it cannot know their real one)."""

    unknown_ids: Literal["adopt", "reject"] = "adopt"
    """A create naming a persona or replica the account does not have: ``adopt`` registers it
    (so an app using its real Tavus ids works offline), ``reject`` answers 400 like Tavus."""

    replica_training_ms: int = Field(default=0, ge=0)
    """How long a replica created through ``POST /v2/replicas`` trains (scaled)."""

    time_scale: float = Field(default=1.0, gt=0)
    """Divides every simulated timer: 1000 turns a 60 s timeout into 60 ms."""

    callback_timeout_s: float = Field(default=5.0, gt=0)
    callback_max_attempts: int = Field(default=3, ge=1)
    """Attempts per callback; retried only on connection errors and 5xx answers."""
    callback_backoff_s: float = Field(default=0.1, ge=0)
    """First retry delay; doubled after each failed attempt."""

    # Delivery controls for tests (see faults.py for how they combine).
    callback_duplicate: int = Field(default=1, ge=1)
    """Deliver every callback this many times."""
    callback_shuffle: bool = False
    """Deliver the post-shutdown callbacks of a conversation in random order."""
    callback_delay_ms: int = Field(default=0, ge=0)
    """Wait this long before each delivery."""
    callback_drop_events: list[str] = Field(default_factory=list)
    """Event types never delivered (they are still recorded for the verbose GET)."""
    callback_drop_probability: float = Field(default=0.0, ge=0.0, le=1.0)
    """Chance of dropping each delivery, drawn from a RNG seeded with ``callback_seed``."""
    callback_seed: int | None = None
    """Seed of the RNG used by ``callback_drop_probability`` and ``callback_shuffle``."""

    tool_call_timeout_s: float = Field(default=10.0, gt=0)
    """How long a call to a tool's endpoint (``delivery.api``) may take; no retries."""

    def scaled(self, seconds: float) -> float:
        """Return a simulated duration in real seconds, applying ``time_scale``."""
        return seconds / self.time_scale
