"""The outbox of the app's signed webhooks (`webhook_events`) and the session events' trigger.

- `webhook_events`: one row per event (`session.started`, `session.ended`,
  `session.report_ready`, `goal.changed`), unique by `(event_type, event_key)` so recording an
  event twice records it once; its delivery state (attempts, next attempt, lease, last error,
  delivered or failed). Row-level security like every table: `anon` and `authenticated` get
  nothing (a user who could write it could have the service sign events to the app);
  `facetoface_service` acting for nobody (the delivery, the operators' API) reads and
  updates every row, and acting for a user may only add (and see) that user's events (a
  change made for them, recorded in the same transaction). It goes with the profile (ON DELETE CASCADE).
- `facetoface.enqueue_session_events()`, an AFTER UPDATE trigger on `daily_sessions` that
  fires when a session gets its start time or its end time: it records `session.started` and
  `session.ended` in the statement that starts or ends the session, whichever path does it.
  An ordinary (SECURITY INVOKER) function: it writes as the writer of the session row (the
  service), under the policies above; a writer without the privilege to write the outbox (the
  origin's Edge Functions as `service_role`, after a rollback) records no event and does not
  fail.

Expand-only (a new table, a new function, a trigger that writes only the new table): the
previous release runs unchanged on it (its rows just wait for a release that delivers them).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from facetoface.migrations.functions import frozen

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: A new table and a trigger that writes only it: the previous release's code is unaffected.
backward_compatible = True

SERVICE = "facetoface_service"
#: The caller's id for facetoface_service's policies, as in 0005 (NULL: acting for nobody).
CLAIM_SUB = (
    "(select coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''),"
    " (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'))::uuid)"
)
NOBODY = f"{CLAIM_SUB} is null"
#: Acting for nobody: every row; acting for a user: that user's (0005's SERVICE_ROWS).
SERVICE_ROWS = f"({NOBODY} or user_id = {CLAIM_SUB})"
#: (name, command, USING, WITH CHECK) of facetoface_service's policies on webhook_events.
POLICIES: tuple[tuple[str, str, str | None, str | None], ...] = (
    # Acting for a user it reads that user's rows: `INSERT … ON CONFLICT` needs the new row
    # to be visible to its writer.
    ("webhook_events_service_select", "SELECT", SERVICE_ROWS, None),
    ("webhook_events_service_update", "UPDATE", NOBODY, NOBODY),
    ("webhook_events_service_delete", "DELETE", NOBODY, None),
    ("webhook_events_service_insert", "INSERT", None, SERVICE_ROWS),
)

ENQUEUE_SESSION_EVENTS = frozen("0014", "enqueue_session_events")
TRIGGER = "daily_sessions_webhook_events"
PG_TRIGGER = (
    f"CREATE TRIGGER {TRIGGER} AFTER UPDATE ON public.daily_sessions FOR EACH ROW"
    " WHEN ((NEW.started_at IS NOT NULL AND OLD.started_at IS NULL)"
    " OR (NEW.completed_at IS NOT NULL AND OLD.completed_at IS NULL))"
    " EXECUTE FUNCTION facetoface.enqueue_session_events()"
)


def upgrade() -> None:
    op.create_table(
        "webhook_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("event_key", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retry_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_token", sa.Uuid(), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_webhook_events_attempts")),
        sa.CheckConstraint(
            "event_type IN ('session.started', 'session.ended', 'session.report_ready',"
            " 'goal.changed')",
            name=op.f("ck_webhook_events_event_type"),
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'failed')", name=op.f("ck_webhook_events_status")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["profiles.id"],
            name=op.f("fk_webhook_events_user_id_profiles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_events")),
        sa.UniqueConstraint(
            "event_type", "event_key", name=op.f("uq_webhook_events_event_type_event_key")
        ),
    )
    op.create_index(
        "ix_webhook_events_due",
        "webhook_events",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(op.f("ix_webhook_events_created_at"), "webhook_events", ["created_at"])
    op.create_index(op.f("ix_webhook_events_user_id"), "webhook_events", ["user_id"])
    op.execute("ALTER TABLE public.webhook_events ENABLE ROW LEVEL SECURITY")
    op.execute(f"REVOKE ALL ON public.webhook_events FROM PUBLIC, anon, authenticated, {SERVICE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON public.webhook_events TO {SERVICE}")
    for name, command, using, check in POLICIES:
        sql = f"CREATE POLICY {name} ON public.webhook_events AS PERMISSIVE FOR {command} TO {SERVICE}"
        if using is not None:
            sql += f" USING ({using})"
        if check is not None:
            sql += f" WITH CHECK ({check})"
        op.execute(sql)
    op.execute(ENQUEUE_SESSION_EVENTS)
    op.execute("REVOKE ALL ON FUNCTION facetoface.enqueue_session_events() FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION facetoface.enqueue_session_events() TO {SERVICE}")
    op.execute(PG_TRIGGER)


def downgrade() -> None:
    op.execute(f"DROP TRIGGER {TRIGGER} ON public.daily_sessions")
    op.execute("DROP FUNCTION facetoface.enqueue_session_events()")
    for name, *_ in POLICIES:
        op.execute(f"DROP POLICY {name} ON public.webhook_events")
    op.drop_table("webhook_events")
