"""Recent reconciler passes (the operators' console shows what each did).

One row per finished pass, written by the replica that ran it; only the newest rows are kept.
On PostgreSQL the table gets row-level security like every other table (0005): only
`facetoface_service` acting for nobody (the reconciler, the ops API) may read or write it;
`anon` and `authenticated` get nothing.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON_TYPE = postgresql.JSONB()

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Expand only: a new table.
backward_compatible = True

SERVICE = "facetoface_service"
#: The service acting for nobody (no caller's claims), as in 0005.
NOBODY = (
    "(select coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''),"
    " (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'))::uuid) is null"
)


def upgrade() -> None:
    op.create_table(
        "reconcile_runs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replica", sa.Text(), nullable=False),
        sa.Column("actions", JSON_TYPE, nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.CheckConstraint("errors >= 0", name=op.f("ck_reconcile_runs_errors")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconcile_runs")),
    )
    op.create_index(
        op.f("ix_reconcile_runs_finished_at"), "reconcile_runs", ["finished_at"], unique=False
    )
    op.execute("ALTER TABLE public.reconcile_runs ENABLE ROW LEVEL SECURITY")
    op.execute(f"REVOKE ALL ON public.reconcile_runs FROM PUBLIC, anon, authenticated, {SERVICE}")
    # Written (and pruned) at the end of each pass; read by the ops API. Never updated.
    op.execute(f"GRANT SELECT, INSERT, DELETE ON public.reconcile_runs TO {SERVICE}")
    op.execute(
        f"CREATE POLICY reconcile_runs_service_all ON public.reconcile_runs AS PERMISSIVE"
        f" FOR ALL TO {SERVICE} USING ({NOBODY}) WITH CHECK ({NOBODY})"
    )


def downgrade() -> None:
    op.execute("DROP POLICY IF EXISTS reconcile_runs_service_all ON public.reconcile_runs")
    op.drop_index(op.f("ix_reconcile_runs_finished_at"), table_name="reconcile_runs")
    op.drop_table("reconcile_runs")
