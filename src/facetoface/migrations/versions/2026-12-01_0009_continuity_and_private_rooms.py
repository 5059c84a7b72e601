"""Continuity, the user's memory choice, private rooms.

- `user_preferences`: one row per user (absent = every default), `mentor_memory` (default
  true): the user lets the mentor carry things over from earlier sessions (the "since last
  time" context section and, when the deployment enables it, Tavus's memory). Owned by the
  user like the other per-user tables: `authenticated` reads and writes its own row;
  `facetoface_service` reads it only while acting for that user (a start's context); it goes
  with the profile (ON DELETE CASCADE).
- `mentor_conversations.meeting_token`: a private room's join credential, kept only while the
  session is live. Not granted to `authenticated` (0005's column grants list the columns a
  user may read; this one is not among them), so a user never reads it through Supabase's
  REST API; the service hands it to the session's owner. A trigger clears it in the same
  statement that ends or fails the conversation, whichever path does that (a callback, an
  end, the reconciler): no extra round trip, nothing to forget.
- PostgreSQL functions: `facetoface.start_session` loads, in the same round trip, the user's
  `mentor_memory` and — when it is on — the last few sessions that ran and ended, the user's
  own last lines of the latest one (from its stored transcript) and the active goals updated
  after it ended, each capped in rows and characters; `facetoface.session_json` carries the
  live session's meeting token (the 409's rejoin and a replayed start answer go to the owner).
- `tavus_callback_events`: `facetoface_service` may read the events of the caller's own
  sessions while acting for them — the session read runs as the service now, because only it
  may read the meeting token — still confined to the caller's rows.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from facetoface.migrations.functions import frozen

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Replaces facetoface.start_session (the previous code calls the 0006 signature, dropped
# here) and adds attributes to the type it returns.
backward_compatible = False

SERVICE = "facetoface_service"
#: The caller's id for facetoface_service's policies, as in 0005.
CLAIM_SUB = (
    "(select coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''),"
    " (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'))::uuid)"
)
OWN = "(select auth.uid()) = user_id"

#: (name, table, command, role, USING, WITH CHECK) of every policy this migration creates.
POLICIES: tuple[tuple[str, str, str, str, str | None, str | None], ...] = (
    ("user_preferences_select_own", "user_preferences", "SELECT", "authenticated", OWN, None),
    ("user_preferences_insert_own", "user_preferences", "INSERT", "authenticated", None, OWN),
    ("user_preferences_update_own", "user_preferences", "UPDATE", "authenticated", OWN, OWN),
    ("user_preferences_delete_own", "user_preferences", "DELETE", "authenticated", OWN, None),
    (
        "user_preferences_service_select",
        "user_preferences",
        "SELECT",
        SERVICE,
        f"user_id = {CLAIM_SUB}",
        None,
    ),
    (
        "tavus_callback_events_service_select_own",
        "tavus_callback_events",
        "SELECT",
        SERVICE,
        "mentor_conversation_id IN (SELECT mc.id FROM public.mentor_conversations mc"  # noqa: S608
        f" WHERE mc.user_id = {CLAIM_SUB})",
        None,
    ),
)

#: The signature of 0006's `start_session`, replaced here (its arguments change).
START_SESSION_0006 = (
    "facetoface.start_session(uuid, uuid, timestamptz, boolean, timestamptz, integer, integer,"
    " integer, integer, text, bytea, timestamptz, timestamptz, uuid, uuid, text, bytea, text,"
    " text)"
)
START_SESSION_0009 = (
    "facetoface.start_session(uuid, uuid, timestamptz, boolean, timestamptz, integer, integer,"
    " integer, integer, integer, integer, integer, text, bytea, timestamptz, timestamptz, uuid,"
    " uuid, text, bytea, text, text)"
)
#: What `start_result` gains (appended: it is read by name).
START_RESULT_ATTRIBUTES = (
    ("mentor_memory", "boolean"),
    ("previous_sessions", "jsonb"),
    ("recap", "jsonb"),
    ("changed_goals", "jsonb"),
)

SESSION_JSON = frozen("0009", "session_json")

START_SESSION = frozen("0009", "start_session")

FORGET_MEETING_TOKEN = frozen("0009", "forget_meeting_token")
TOKEN_TRIGGER = "mentor_conversations_forget_meeting_token"
PG_TOKEN_TRIGGER = (
    f"CREATE TRIGGER {TOKEN_TRIGGER} BEFORE INSERT OR UPDATE ON public.mentor_conversations"
    " FOR EACH ROW WHEN (NEW.meeting_token IS NOT NULL AND NEW.status IN ('ended', 'failed'))"
    " EXECUTE FUNCTION facetoface.forget_meeting_token()"
)


def _grant_functions(*signatures: str) -> None:
    for signature in signatures:
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {SERVICE}")


def upgrade() -> None:
    op.add_column("mentor_conversations", sa.Column("meeting_token", sa.Text(), nullable=True))
    op.create_table(
        "user_preferences",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("mentor_memory", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["profiles.id"],
            name=op.f("fk_user_preferences_user_id_profiles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_user_preferences")),
    )
    op.execute("ALTER TABLE public.user_preferences ENABLE ROW LEVEL SECURITY")
    op.execute(f"REVOKE ALL ON public.user_preferences FROM PUBLIC, anon, authenticated, {SERVICE}")
    op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON public.user_preferences TO authenticated")
    op.execute(f"GRANT SELECT ON public.user_preferences TO {SERVICE}")
    for name, table, command, role, using, check in POLICIES:
        sql = f"CREATE POLICY {name} ON public.{table} AS PERMISSIVE FOR {command} TO {role}"
        if using is not None:
            sql += f" USING ({using})"
        if check is not None:
            sql += f" WITH CHECK ({check})"
        op.execute(sql)

    op.execute(SESSION_JSON)
    op.execute(f"DROP FUNCTION {START_SESSION_0006}")
    for name, kind in START_RESULT_ATTRIBUTES:
        op.execute(f"ALTER TYPE facetoface.start_result ADD ATTRIBUTE {name} {kind}")
    op.execute(START_SESSION)
    op.execute(FORGET_MEETING_TOKEN)
    _grant_functions(START_SESSION_0009, "facetoface.forget_meeting_token()")
    op.execute(PG_TOKEN_TRIGGER)


def downgrade() -> None:
    op.execute(f"DROP TRIGGER {TOKEN_TRIGGER} ON public.mentor_conversations")
    op.execute("DROP FUNCTION facetoface.forget_meeting_token()")
    op.execute(f"DROP FUNCTION {START_SESSION_0009}")
    for name, _ in reversed(START_RESULT_ATTRIBUTES):
        op.execute(f"ALTER TYPE facetoface.start_result DROP ATTRIBUTE {name}")
    op.execute(frozen("0006", "start_session"))
    _grant_functions(START_SESSION_0006)
    op.execute(frozen("0006", "session_json"))
    for name, table, *_ in POLICIES:
        op.execute(f"DROP POLICY {name} ON public.{table}")
    op.drop_table("user_preferences")
    op.drop_column("mentor_conversations", "meeting_token")
