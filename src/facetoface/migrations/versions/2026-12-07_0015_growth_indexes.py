"""Indexes that keep the hot statements flat as history grows.

Measured with the benchmark's growth phase (bench/README.md: tables filled in SQL to 10⁴–10⁶
past sessions over 2,000 users):

- `ix_mentor_conversations_unverified_end_time`: the reconciler's "recently ended, not yet
  compared with Tavus" claim (`ReconcileRepository.claim_unverified`) was a sequential scan
  of every conversation ever held (the only index on status was partial on the live
  statuses). This one holds only the ended rows that still wait for that comparison (or
  whose Tavus end failed), keyed by end time, so a pass reads the recent ones and nothing of
  verified history. Its predicate is the claim's own condition, spelt the same way, so the
  planner proves the claim may use it.
- `ix_mentor_conversations_transcript_end_time`: retention's search for transcripts past
  their retention (`expire_transcripts`) scanned history when there was nothing left to
  clear; this serves it from the sessions that still hold a transcript.
- `ix_mentor_conversations_user_id_created_at_id` replaces `(user_id, created_at)`: "since
  last time" (`facetoface.start_session`) orders a user's ended sessions by
  `(created_at, id)` and takes the first few; with the id in the key the planner walks the
  index backward and stops at the limit instead of reading and sorting every session the
  user ever had. The quota count uses the same index's prefix.

- `facetoface.start_session` reads "since last time" through a cursor: a cursor's plan is
  chosen for its first rows, so it walks that index backward and stops after the few
  sessions it needs. The single `ORDER BY … LIMIT` statement it replaces read and sorted
  all of the user's ended sessions, because facetoface_service's policy
  (`caller IS NULL OR user_id = caller`) hides the filter's selectivity from the planner.
  Same arguments, same result.

Plain `CREATE INDEX` (inside the migration's transaction): writes to `mentor_conversations`
wait while each index builds (about a second per 10⁵ rows on the benchmark's machine).

Expand-only: new indexes, one index replaced by a wider one, and a function replaced by one
with the same signature and results; the previous release's code runs unchanged on the
result.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 17:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

from facetoface.migrations.functions import frozen

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

backward_compatible = True

#: `claim_unverified`'s condition as the repository spells it (status `ended`, and not yet
#: verified or its Tavus end failed): frozen here as history, held equal to the model's by
#: tests/test_migrations.py's model/schema comparison.
UNVERIFIED = (
    "status = 'ended' AND tavus_conversation_id IS NOT NULL"
    " AND (callbacks_verified_at IS NULL OR failure_code = 'tavus_end_failed')"
)


def upgrade() -> None:
    op.create_index(
        "ix_mentor_conversations_unverified_end_time",
        "mentor_conversations",
        ["end_time"],
        postgresql_where=UNVERIFIED,
    )
    op.create_index(
        "ix_mentor_conversations_transcript_end_time",
        "mentor_conversations",
        ["end_time"],
        postgresql_where="transcript IS NOT NULL",
    )
    op.create_index(
        "ix_mentor_conversations_user_id_created_at_id",
        "mentor_conversations",
        ["user_id", "created_at", "id"],
    )
    op.drop_index("ix_mentor_conversations_user_id_created_at", "mentor_conversations")
    op.execute(frozen("0015", "start_session"))


def downgrade() -> None:
    op.execute(frozen("0013", "start_session"))
    op.create_index(
        "ix_mentor_conversations_user_id_created_at",
        "mentor_conversations",
        ["user_id", "created_at"],
    )
    op.drop_index("ix_mentor_conversations_user_id_created_at_id", "mentor_conversations")
    op.drop_index("ix_mentor_conversations_transcript_end_time", "mentor_conversations")
    op.drop_index("ix_mentor_conversations_unverified_end_time", "mentor_conversations")
