"""Reconciler lease and attempt count on conversations.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 16:29:08.705470
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Expand only: a nullable and a defaulted column.
backward_compatible = True


def upgrade() -> None:
    with op.batch_alter_table("mentor_conversations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "reconcile_lease_until",
                sa.DateTime(timezone=True),
                nullable=True,
            )
        )
        batch_op.add_column(
            sa.Column(
                "reconcile_attempts", sa.Integer(), server_default=sa.text("0"), nullable=False
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("mentor_conversations", schema=None) as batch_op:
        batch_op.drop_column("reconcile_attempts")
        batch_op.drop_column("reconcile_lease_until")
