"""Erasures block starts; a session never ends before it started.

- `facetoface.erasures`: one row per user whose data `purge-user` is erasing, written before
  anything is deleted and removed with the user's rows. `facetoface.start_session` refuses to
  start a session for a marked user (`erasure_in_progress`); the mark and a start that may
  write serialise on a per-user advisory lock, so a start either committed its rows before
  the mark (and the erasure ends and deletes them) or sees the mark. The service's own
  bookkeeping, in schema `facetoface` beside its functions: only `facetoface_service` reads
  and writes it (row-level security on, one policy for that role).
- `facetoface.apply_delta`: a session closed by our side before Tavus's create was recorded
  never started (the user never had the room: `interrupted`, no start, no duration, whatever
  Tavus reports later), and the end time is never before the start (Tavus's clock and ours
  differ) — as conversations/state.py's `started_at` / `ended_at`.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 10:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

from facetoface.migrations.functions import frozen

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Expand-only: a new table and new function bodies with unchanged signatures. The previous
#: release never marks an erasure, so its starts never meet the new refusal, and its reads
#: see the derived times the new merge writes.
backward_compatible = True

SERVICE = "facetoface_service"


def upgrade() -> None:
    op.execute(
        "CREATE TABLE facetoface.erasures ("
        " user_id uuid CONSTRAINT pk_erasures PRIMARY KEY,"
        " requested_at timestamptz NOT NULL DEFAULT now())"
    )
    op.execute("ALTER TABLE facetoface.erasures ENABLE ROW LEVEL SECURITY")
    op.execute("REVOKE ALL ON facetoface.erasures FROM PUBLIC")
    op.execute(f"GRANT SELECT, INSERT, DELETE ON facetoface.erasures TO {SERVICE}")
    op.execute(
        "CREATE POLICY erasures_service_all ON facetoface.erasures AS PERMISSIVE FOR ALL"
        f" TO {SERVICE} USING (true) WITH CHECK (true)"
    )
    op.execute(frozen("0011", "start_session"))
    op.execute(frozen("0011", "apply_delta"))


def downgrade() -> None:
    op.execute(frozen("0006", "apply_delta"))
    op.execute(frozen("0009", "start_session"))
    op.execute("DROP TABLE facetoface.erasures")
