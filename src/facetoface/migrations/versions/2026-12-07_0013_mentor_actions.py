"""What the mentor does: tool calls, the goal-change log, session reports.

- `mentor_tool_calls`: each tool call (or post-call action) Tavus delivered, by
  `(mentor_conversation_id, tool_call_id)`: a replay finds its row and changes nothing.
- `goal_changes`: what the mentor changed (before → after, when, which session, tool or
  report) and `undone_at` once the user undid it.
- `session_reports`: a session's post-call report, at most one.

All three are owned by the user like the other per-user tables: `authenticated` reads its own
rows and writes them (the mentor's changes are written as the session's user, under these
policies: migration 0005's idiom), may only set `undone_at` of a change; `facetoface_service`
reads them only while acting for that user (a start's context, a session's detail). They go
with the profile, the goal, the session (ON DELETE CASCADE).

`facetoface.start_session` lists each active goal with its id (the mentor names a goal by it
in a tool call) and, in `mentor_changes`, what the mentor changed in the latest session and
whether the user undid it.

Expand-only (new tables, an attribute appended to `start_result` — read by name — and the
same function signature): the previous release runs unchanged on it.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from facetoface.migrations.functions import frozen

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: New tables and an appended result attribute; the old code never reads them.
backward_compatible = True

SERVICE = "facetoface_service"
#: The caller's id for facetoface_service's policies, as in 0005.
CLAIM_SUB = (
    "(select coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''),"
    " (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'))::uuid)"
)
OWN = "(select auth.uid()) = user_id"
TABLES = ("mentor_tool_calls", "goal_changes", "session_reports")

#: What `authenticated` may do on each table (its own rows, by the policies below).
USER_GRANTS = {
    "mentor_tool_calls": "SELECT, INSERT",
    "goal_changes": "SELECT, INSERT, UPDATE (undone_at)",
    "session_reports": "SELECT, INSERT",
}


def _policies() -> list[tuple[str, str, str, str, str | None, str | None]]:
    policies: list[tuple[str, str, str, str, str | None, str | None]] = []
    for table in TABLES:
        policies += [
            (f"{table}_select_own", table, "SELECT", "authenticated", OWN, None),
            (f"{table}_insert_own", table, "INSERT", "authenticated", None, OWN),
            (f"{table}_service_select", table, "SELECT", SERVICE, f"user_id = {CLAIM_SUB}", None),
        ]
    policies.append(
        ("goal_changes_update_own", "goal_changes", "UPDATE", "authenticated", OWN, OWN)
    )
    return policies


START_SESSION = frozen("0013", "start_session")


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "mentor_tool_calls",
        sa.Column("mentor_conversation_id", sa.Uuid(), nullable=False),
        sa.Column("tool_call_id", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("tool_name", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("changes", sa.Integer(), server_default=sa.text("0"), nullable=False),
        _timestamp("created_at"),
        sa.CheckConstraint(
            "length(tool_call_id) BETWEEN 1 AND 200",
            name=op.f("ck_mentor_tool_calls_tool_call_id_length"),
        ),
        sa.ForeignKeyConstraint(
            ["mentor_conversation_id"],
            ["mentor_conversations.id"],
            name=op.f("fk_mentor_tool_calls_mentor_conversation_id_mentor_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["profiles.id"],
            name=op.f("fk_mentor_tool_calls_user_id_profiles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "mentor_conversation_id", "tool_call_id", name=op.f("pk_mentor_tool_calls")
        ),
    )
    op.create_index(op.f("ix_mentor_tool_calls_user_id"), "mentor_tool_calls", ["user_id"])
    op.create_table(
        "goal_changes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("goal_id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("before_value", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("after_value", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("tool_call_id", sa.Text(), nullable=True),
        _timestamp("created_at"),
        _timestamp("undone_at", nullable=True),
        sa.CheckConstraint("kind IN ('progress', 'added')", name=op.f("ck_goal_changes_kind")),
        sa.CheckConstraint("source IN ('tool', 'report')", name=op.f("ck_goal_changes_source")),
        sa.ForeignKeyConstraint(
            ["goal_id"],
            ["user_goals.id"],
            name=op.f("fk_goal_changes_goal_id_user_goals"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["daily_sessions.id"],
            name=op.f("fk_goal_changes_session_id_daily_sessions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["profiles.id"],
            name=op.f("fk_goal_changes_user_id_profiles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_goal_changes")),
    )
    op.create_index(
        op.f("ix_goal_changes_user_id_created_at"), "goal_changes", ["user_id", "created_at"]
    )
    op.create_index(op.f("ix_goal_changes_session_id"), "goal_changes", ["session_id"])
    op.create_index(op.f("ix_goal_changes_goal_id"), "goal_changes", ["goal_id"])
    op.create_table(
        "session_reports",
        sa.Column("mentor_conversation_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("next_steps", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("mood", sa.Text(), nullable=True),
        sa.Column("goal_updates", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        _timestamp("received_at"),
        sa.ForeignKeyConstraint(
            ["mentor_conversation_id"],
            ["mentor_conversations.id"],
            name=op.f("fk_session_reports_mentor_conversation_id_mentor_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["profiles.id"],
            name=op.f("fk_session_reports_user_id_profiles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("mentor_conversation_id", name=op.f("pk_session_reports")),
    )
    op.create_index(op.f("ix_session_reports_user_id"), "session_reports", ["user_id"])

    for table in TABLES:
        op.execute(f"ALTER TABLE public.{table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"REVOKE ALL ON public.{table} FROM PUBLIC, anon, authenticated, {SERVICE}")
        op.execute(f"GRANT {USER_GRANTS[table]} ON public.{table} TO authenticated")
        op.execute(f"GRANT SELECT ON public.{table} TO {SERVICE}")
    for name, table, command, role, using, check in _policies():
        sql = f"CREATE POLICY {name} ON public.{table} AS PERMISSIVE FOR {command} TO {role}"
        if using is not None:
            sql += f" USING ({using})"
        if check is not None:
            sql += f" WITH CHECK ({check})"
        op.execute(sql)

    op.execute("ALTER TYPE facetoface.start_result ADD ATTRIBUTE mentor_changes jsonb")
    op.execute(START_SESSION)


def downgrade() -> None:
    op.execute(frozen("0011", "start_session"))
    op.execute("ALTER TYPE facetoface.start_result DROP ATTRIBUTE mentor_changes")
    for name, table, *_ in reversed(_policies()):
        op.execute(f"DROP POLICY {name} ON public.{table}")
    for table in reversed(TABLES):
        op.drop_table(table)
