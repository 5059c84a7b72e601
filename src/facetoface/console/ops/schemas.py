"""Response bodies of the operators' API (`/v1/ops`)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field


class LiveSession(BaseModel):
    """A session that may be running at Tavus now."""

    id: uuid.UUID = Field(description="The session id (`daily_sessions.id`).")
    user_id: uuid.UUID
    user_email: str | None = Field(
        default=None, description="The user's email (operators only), when they have a profile."
    )
    user_name: str | None = Field(
        default=None, description="The user's display name (operators only)."
    )
    status: str = Field(description="The session's status as its user sees it.")
    conversation_status: str = Field(description="starting | active | ending | indeterminate")
    conversation_id: str | None = Field(description="Tavus's conversation id, once known.")
    mentor_name: str | None
    failure_code: str | None
    created_at: datetime
    started_at: datetime | None = Field(description="When Tavus created the conversation.")
    replica_joined_at: datetime | None
    last_change_at: datetime
    age_seconds: int = Field(description="Seconds since the start (or since the request).")
    overdue: bool = Field(description="Older than `SESSION_MAX_CALL_DURATION_SECONDS`.")


class LiveSessions(BaseModel):
    max_call_duration_seconds: int
    reconciler_closes_after_seconds: int = Field(
        description="The reconciler closes a live session this old (cap plus grace)."
    )
    items: list[LiveSession]


class DaySessions(BaseModel):
    date: date
    total: int
    by_status: dict[str, int]


class DurationBucket(BaseModel):
    label: str
    min_seconds: int
    max_seconds: int | None = Field(description="Exclusive; null for the open last bucket.")
    count: int


class StartFailure(BaseModel):
    failure_code: str
    conversation_status: str = Field(
        description="failed (never created), indeterminate (still unknown), or where an "
        "adopted start stands now"
    )
    count: int


class Stats(BaseModel):
    days: int
    since: date
    sessions_per_day: list[DaySessions]
    durations: list[DurationBucket]
    start_failures: list[StartFailure]


class ReconcilePass(BaseModel):
    id: uuid.UUID
    started_at: datetime
    finished_at: datetime
    duration_ms: int
    replica: str
    actions: dict[str, int]
    errors: int


class ReconcilePasses(BaseModel):
    kept: int = Field(description="How many passes are kept (older ones are pruned).")
    items: list[ReconcilePass]


class ReconcileResult(BaseModel):
    actions: dict[str, int]
    errors: int
    duration_ms: int


class BreakerState(BaseModel):
    state: str = Field(description="closed | open | half_open")
    consecutive_failures: int
    threshold: int
    cooldown_seconds: float
    retry_after_seconds: float


class BulkheadState(BaseModel):
    in_flight: int
    limit: int


class TavusState(BaseModel):
    """This replica's view of Tavus (each replica has its own breaker and bulkhead)."""

    replica: str
    breaker: BreakerState
    bulkhead: BulkheadState
    retry_budget_tokens: float
    last_seen: dict[str, Any] = Field(description="As in `/readyz`'s `checks.tavus`.")


class CallbackOutcome(BaseModel):
    event_type: str
    outcome: str = Field(description="applied | no_effect | ignored")
    count: int


class CallbackOutcomes(BaseModel):
    hours: int
    since: datetime
    totals: dict[str, int]
    items: list[CallbackOutcome]
