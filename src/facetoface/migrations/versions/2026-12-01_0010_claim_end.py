"""The end's claim as one statement: `facetoface.claim_end`.

An end marks the caller's live session `ending`, then reads the session back. The read must
see the session as it stands after any end that committed while the claim waited for the
row's lock, so it needs a snapshot of its own: one statement's snapshot would be older. In a
PL/pgSQL function each statement takes a fresh snapshot (READ COMMITTED), so the claim and
its read reach the server as one statement in the end's first round trip.

Like the other `facetoface.*` functions it runs with the caller's rights (row-level security
confines it to the caller's rows) and only `facetoface_service` may execute it.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 10:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

from facetoface.migrations.functions import frozen

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Expand only: a new function.
backward_compatible = True

SERVICE = "facetoface_service"
SIGNATURE = "facetoface.claim_end(uuid, timestamp with time zone, uuid, uuid, text)"
#: `LIVE_STATUSES` (conversations/status.py) as `CLAIM_END` spells them; a test holds the
#: three to the same set.
LIVE = ("starting", "active", "ending", "indeterminate")

CLAIM_END = frozen("0010", "claim_end")


def upgrade() -> None:
    op.execute(CLAIM_END)
    op.execute(f"REVOKE ALL ON FUNCTION {SIGNATURE} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {SIGNATURE} TO {SERVICE}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {SIGNATURE}")
