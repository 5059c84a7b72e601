"""Callback inbox, and what Tavus's callbacks tell about a conversation.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 16:01:00.861032
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON_TYPE = postgresql.JSONB()

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Expand only: a new table and nullable or defaulted columns.
backward_compatible = True


def upgrade() -> None:
    op.create_table(
        "tavus_callback_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("mentor_conversation_id", sa.Uuid(), nullable=False),
        sa.Column("conversation_id", sa.Text(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("dedupe_key", sa.Text(), nullable=False),
        sa.Column("event_timestamp", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "payload",
            JSON_TYPE,
            nullable=False,
        ),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "outcome IN ('applied', 'no_effect', 'ignored')",
            name=op.f("ck_tavus_callback_events_outcome"),
        ),
        sa.ForeignKeyConstraint(
            ["mentor_conversation_id"],
            ["mentor_conversations.id"],
            name=op.f("fk_tavus_callback_events_mentor_conversation_id_mentor_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tavus_callback_events")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_tavus_callback_events_dedupe_key")),
    )
    with op.batch_alter_table("tavus_callback_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_tavus_callback_events_mentor_conversation_id_received_at"),
            ["mentor_conversation_id", "received_at"],
            unique=False,
        )

    with op.batch_alter_table("mentor_conversations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column(
                "transcript",
                JSON_TYPE,
                nullable=True,
            )
        )
        batch_op.add_column(
            sa.Column(
                "recording",
                JSON_TYPE,
                nullable=True,
            )
        )
        batch_op.add_column(sa.Column("perception_analysis", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "post_call_actions",
                JSON_TYPE,
                nullable=True,
            )
        )
        batch_op.add_column(
            sa.Column("version", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("mentor_conversations", schema=None) as batch_op:
        batch_op.drop_column("version")
        batch_op.drop_column("post_call_actions")
        batch_op.drop_column("perception_analysis")
        batch_op.drop_column("recording")
        batch_op.drop_column("transcript")
        batch_op.drop_column("closed_at")

    with op.batch_alter_table("tavus_callback_events", schema=None) as batch_op:
        batch_op.drop_index(
            batch_op.f("ix_tavus_callback_events_mentor_conversation_id_received_at")
        )

    op.drop_table("tavus_callback_events")
