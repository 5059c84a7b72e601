"""Schema revisions and their compatibility, readable by code older than the database.

`schema_revisions`: one row per migration revision — the revision it follows and whether it
is backward-compatible (the previous release's code runs correctly on the schema it leaves).
A replica whose code is older than the database cannot read the newer migration files, so
`facetoface migrate` writes every revision it knows here after each upgrade
(`migrations/env.py`), and `serve` walks the rows from the database's revision down to its
own head (`facetoface.db.compatibility`): it serves when every revision in between is
compatible, and refuses, naming the revision, when one is not.

Row-level security like every table (0005): readable by `facetoface_service` (the replicas
read it as that role), written only by the owner (`migrate`); `anon` and `authenticated`
get nothing.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 17:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Expand only: a new table, which the previous release never reads.
backward_compatible = True

SERVICE = "facetoface_service"


def upgrade() -> None:
    op.create_table(
        "schema_revisions",
        sa.Column("revision", sa.Text(), nullable=False),
        sa.Column("down_revision", sa.Text(), nullable=True),
        sa.Column("backward_compatible", sa.Boolean(), nullable=False),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("revision", name=op.f("pk_schema_revisions")),
    )
    op.execute("ALTER TABLE public.schema_revisions ENABLE ROW LEVEL SECURITY")
    op.execute(f"REVOKE ALL ON public.schema_revisions FROM PUBLIC, anon, authenticated, {SERVICE}")
    op.execute(f"GRANT SELECT ON public.schema_revisions TO {SERVICE}")
    op.execute(
        "CREATE POLICY schema_revisions_service_select ON public.schema_revisions "
        f"AS PERMISSIVE FOR SELECT TO {SERVICE} USING (true)"
    )


def downgrade() -> None:
    op.execute("DROP POLICY IF EXISTS schema_revisions_service_select ON public.schema_revisions")
    op.drop_table("schema_revisions")
