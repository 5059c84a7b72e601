from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Index, Text
from sqlalchemy.orm import Mapped, mapped_column

from facetoface.models.base import Base, IDMixin, JSONType

#: Passes the table keeps: each write prunes all but the newest this many.
RECONCILE_RUNS_KEPT = 100


class ReconcileRun(IDMixin, Base):
    """One finished reconciler pass, for the operators' console: written once at the end of
    the pass by whichever replica ran it, so N replicas share one history. Only the most
    recent passes are kept (older rows are pruned by the same write)."""

    __tablename__ = "reconcile_runs"

    started_at: Mapped[datetime]
    finished_at: Mapped[datetime]
    #: Which process ran it: `<host>:<pid>`.
    replica: Mapped[str] = mapped_column(Text)
    #: What the pass did, by action (`adopted`, `closed_overdue`, `recovered:<event>`, …).
    actions: Mapped[Any] = mapped_column(JSONType)
    #: Units of work that failed at Tavus (they are retried by a later pass).
    errors: Mapped[int]

    __table_args__ = (
        CheckConstraint("errors >= 0", name="errors"),
        # Newest first, and the prune.
        Index(None, "finished_at"),
    )
