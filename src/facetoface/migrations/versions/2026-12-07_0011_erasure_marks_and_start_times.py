"""Erasures block starts; a session never ends before it started.

- `facetoface.erasures`: one row per user whose data `purge-user` is erasing, written before
  anything is deleted and removed with the user's rows. `facetoface.start_session` refuses to
  start a session for a marked user (`erasure_in_progress`); the mark and a start that may
  write serialise on a per-user advisory lock, so a start either committed its rows before
  the mark (and the erasure ends and deletes them) or sees the mark. The service's own
  bookkeeping, in schema `facetoface` beside its functions: only `facetoface_service` reads
  and writes it (row-level security on, one policy for that role).
- `facetoface.deleted_conversations`: the id of every `mentor_conversations` row deleted here,
  written by a trigger (`facetoface.remember_deleted_conversation`): every deletion — the
  service's, or a foreign key's cascade (run as the tables' owner) — leaves its id. The
  reconciler ends a running conversation named with this installation's identity whose row is
  gone only when its id is listed (deleted here, while its start waited for Tavus): a database
  copied from another installation shares its identity but never deleted the other's rows, so
  it never ends them. Kept two days (the reconciler's retention step).
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

#: Expand-only: new tables, a trigger, and new function bodies with unchanged signatures. The previous
#: release never marks an erasure, so its starts never meet the new refusal, and its reads
#: see the derived times the new merge writes.
backward_compatible = True

SERVICE = "facetoface_service"
REMEMBER = "facetoface.remember_deleted_conversation()"
REMEMBER_TRIGGER = "mentor_conversations_remember_deleted"


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
    op.execute(
        "CREATE TABLE facetoface.deleted_conversations ("
        " id uuid CONSTRAINT pk_deleted_conversations PRIMARY KEY,"
        " deleted_at timestamptz NOT NULL)"
    )
    op.execute(
        "CREATE INDEX ix_deleted_conversations_deleted_at"
        " ON facetoface.deleted_conversations (deleted_at)"
    )
    op.execute("ALTER TABLE facetoface.deleted_conversations ENABLE ROW LEVEL SECURITY")
    op.execute("REVOKE ALL ON facetoface.deleted_conversations FROM PUBLIC")
    op.execute(f"GRANT SELECT, INSERT, DELETE ON facetoface.deleted_conversations TO {SERVICE}")
    op.execute(
        "CREATE POLICY deleted_conversations_service_all ON facetoface.deleted_conversations"
        f" AS PERMISSIVE FOR ALL TO {SERVICE} USING (true)"
    )
    op.execute(frozen("0011", "remember_deleted_conversation"))
    op.execute(f"REVOKE ALL ON FUNCTION {REMEMBER} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {REMEMBER} TO {SERVICE}")
    op.execute(
        f"CREATE TRIGGER {REMEMBER_TRIGGER} AFTER DELETE ON public.mentor_conversations"
        f" FOR EACH ROW EXECUTE FUNCTION {REMEMBER}"
    )
    op.execute(frozen("0011", "start_session"))
    op.execute(frozen("0011", "apply_delta"))


def downgrade() -> None:
    op.execute(frozen("0006", "apply_delta"))
    op.execute(frozen("0009", "start_session"))
    op.execute(f"DROP TRIGGER {REMEMBER_TRIGGER} ON public.mentor_conversations")
    op.execute(f"DROP FUNCTION {REMEMBER}")
    op.execute("DROP TABLE facetoface.deleted_conversations")
    op.execute("DROP TABLE facetoface.erasures")
