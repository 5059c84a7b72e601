"""Conversation core: merge digests, lost-callback checks, raw bodies, the installation id.

- `mentor_conversations.transcript_digest` / `recording_digest`: the tie-break of the
  transcript and recording merges, stored so PostgreSQL's one-statement merge compares
  exactly what Python's does; filled here for existing rows.
- `mentor_conversations.post_call_actions` becomes a set keyed by each action's digest (an
  object; merging is a union), converted here from the list it was.
- `mentor_conversations.callbacks_verified_at`: the reconciler compared Tavus's record of an
  ended session with ours once; `reconcile_error`: its last error on the row.
- `idempotency_keys` loses `response_status`/`response_body`: a replay answers with the
  key's session as it stands now.
- `tavus_callback_events.raw_body_b64`: the bytes of a callback whose text had to be
  normalised to be stored (U+0000, lone surrogates).
- `facetoface_installation`: one row with this installation's identity, generated here once
  per database; conversation names carry it so the reconciler only ever ends its own.
- PostgreSQL: schema `facetoface` (not exposed by Supabase's REST API) with
  `facetoface.apply_delta(...)`, the conversation merge as one PL/pgSQL function. The service
  calls it in one round trip; being a function, its statements' plans are cached per server
  connection — through any pooler — where a long ad-hoc statement would be planned on every
  call. Only `facetoface_service` may execute it; it runs with the caller's rights (RLS).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 09:00:00.000000
"""

import hashlib
import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from facetoface.migrations.functions import frozen

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Contract: drops idempotency_keys.response_status/response_body (the previous code
# wrote them) and turns post_call_actions from a list into an object.
backward_compatible = False

SERVICE = "facetoface_service"
#: The functions in schema `facetoface`; only the service may execute them.
FUNCTIONS = ("apply_delta", "session_json", "start_session")

#: What `facetoface.apply_delta` returns: what it found and the session as written.
APPLIED_TYPE = r"""
CREATE TYPE facetoface.applied AS (
  found boolean,
  token_ok boolean,
  authorized boolean,
  stored_outcome text,
  before_status text,
  id uuid,
  user_id uuid,
  session_status text,
  started_at timestamptz,
  completed_at timestamptz,
  duration_seconds integer,
  created_at timestamptz,
  mentor_conversation_id uuid,
  conversation_status text,
  tavus_conversation_id text,
  conversation_url text,
  conversation_name text,
  start_time timestamptz,
  end_time timestamptz,
  shutdown_at timestamptz,
  shutdown_reason text,
  failure_code text,
  mentor_name text,
  mentor_avatar_url text
)
"""

#: A session as JSON (answers that carry another session than the one being written).
SESSION_JSON = frozen("0006", "session_json")

#: What `facetoface.start_session` returns.
START_RESULT_TYPE = r"""
CREATE TYPE facetoface.start_result AS (
  outcome text,            -- inserted | refused | conflict | key | preview
  refusal text,            -- why nothing was inserted (see sessions/service.py)
  key_state text,          -- mismatch | done | in_flight | unresolved (with outcome = key)
  key_session jsonb,       -- the key's session (done / unresolved)
  live_session jsonb,      -- the live session (conflict)
  profile jsonb,
  onboarding jsonb,
  ritual jsonb,
  categories jsonb,
  goals jsonb,
  persona jsonb,
  persona_id text,         -- the mentor chosen for the insert
  replica_id text,
  mentor_name text,
  mentor_avatar_url text,
  recent_starts integer,
  oldest_recent_start timestamptz,
  created_at timestamptz
);
"""

#: The first round trip of a start: load the context, decide, write the rows.
START_SESSION = frozen("0006", "start_session")

#: The conversation merge (conversations/state.py's `merge` and `derive`) in PL/pgSQL.
APPLY_DELTA = frozen("0006", "apply_delta")


def _digest(value: Any) -> str:
    # conversations.state.canonical_digest at this revision (migrations never import the app).
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def upgrade() -> None:
    bind = op.get_bind()
    json_type = postgresql.JSONB()
    with op.batch_alter_table("mentor_conversations") as batch:
        batch.add_column(sa.Column("transcript_digest", sa.Text(), nullable=True))
        batch.add_column(sa.Column("recording_digest", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("callbacks_verified_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column("reconcile_error", sa.Text(), nullable=True))
    with op.batch_alter_table("tavus_callback_events") as batch:
        batch.add_column(sa.Column("raw_body_b64", sa.Text(), nullable=True))
    # A replay now answers with the session as it stands (the key names it), not a copy.
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_column("response_status")
        batch.drop_column("response_body")

    conversations = sa.table(
        "mentor_conversations",
        sa.column("id", sa.Uuid()),
        sa.column("transcript", json_type),
        sa.column("recording", json_type),
        sa.column("post_call_actions", json_type),
        sa.column("transcript_digest", sa.Text()),
        sa.column("recording_digest", sa.Text()),
    )
    rows = bind.execute(
        sa.select(
            conversations.c.id,
            conversations.c.transcript,
            conversations.c.recording,
            conversations.c.post_call_actions,
        ).where(
            sa.or_(
                conversations.c.transcript.is_not(None),
                conversations.c.recording.is_not(None),
                conversations.c.post_call_actions.is_not(None),
            )
        )
    ).all()
    for row in rows:
        transcript, recording = _json(row.transcript), _json(row.recording)
        actions = _json(row.post_call_actions)
        if isinstance(actions, list):
            actions = {_digest(action): action for action in actions}
        bind.execute(
            conversations.update()
            .where(conversations.c.id == row.id)
            .values(
                transcript_digest=_digest(transcript) if transcript is not None else None,
                recording_digest=_digest(recording) if recording is not None else None,
                post_call_actions=actions,
            )
        )

    installation = op.create_table(
        "facetoface_installation",
        sa.Column("singleton", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("singleton = 1", name="ck_facetoface_installation_single_row"),
        sa.PrimaryKeyConstraint("singleton", name="pk_facetoface_installation"),
        sa.UniqueConstraint("id", name="uq_facetoface_installation_id"),
    )
    created = datetime.now(UTC)
    op.bulk_insert(
        installation,
        [
            {
                "singleton": 1,
                "id": uuid.uuid4(),
                "created_at": created,
            }
        ],
    )

    op.execute("ALTER TABLE public.facetoface_installation ENABLE ROW LEVEL SECURITY")
    op.execute(
        f"REVOKE ALL ON public.facetoface_installation FROM PUBLIC, anon, authenticated, {SERVICE}"
    )
    op.execute(f"GRANT SELECT ON public.facetoface_installation TO {SERVICE}")
    op.execute(
        "CREATE POLICY facetoface_installation_service_select "
        f"ON public.facetoface_installation AS PERMISSIVE FOR SELECT TO {SERVICE} "
        "USING (true)"
    )
    # Retention also clears the raw bytes of the callbacks it redacts.
    op.execute(f"GRANT UPDATE (raw_body_b64) ON public.tavus_callback_events TO {SERVICE}")
    op.execute("CREATE SCHEMA facetoface")
    op.execute("REVOKE ALL ON SCHEMA facetoface FROM PUBLIC")
    op.execute(f"GRANT USAGE ON SCHEMA facetoface TO {SERVICE}")
    op.execute(APPLIED_TYPE)
    op.execute(APPLY_DELTA)
    op.execute(SESSION_JSON)
    op.execute(START_RESULT_TYPE)
    op.execute(START_SESSION)
    for function in FUNCTIONS:
        op.execute(f"REVOKE ALL ON FUNCTION facetoface.{function} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION facetoface.{function} TO {SERVICE}")


def downgrade() -> None:
    bind = op.get_bind()
    json_type = postgresql.JSONB()
    op.execute("DROP SCHEMA facetoface CASCADE")
    op.drop_table("facetoface_installation")
    conversations = sa.table(
        "mentor_conversations",
        sa.column("id", sa.Uuid()),
        sa.column("post_call_actions", json_type),
    )
    for row in bind.execute(
        sa.select(conversations.c.id, conversations.c.post_call_actions).where(
            conversations.c.post_call_actions.is_not(None)
        )
    ).all():
        actions = _json(row.post_call_actions)
        if isinstance(actions, dict):
            bind.execute(
                conversations.update()
                .where(conversations.c.id == row.id)
                .values(post_call_actions=[actions[key] for key in sorted(actions)])
            )
    with op.batch_alter_table("tavus_callback_events") as batch:
        batch.drop_column("raw_body_b64")
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.add_column(sa.Column("response_status", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("response_body", json_type, nullable=True))
    with op.batch_alter_table("mentor_conversations") as batch:
        batch.drop_column("reconcile_error")
        batch.drop_column("callbacks_verified_at")
        batch.drop_column("recording_digest")
        batch.drop_column("transcript_digest")
