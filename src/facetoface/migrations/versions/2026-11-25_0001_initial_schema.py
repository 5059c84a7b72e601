"""Initial schema: the origin's six tables, fixed, plus the three it never migrated.

Revision ID: 0001
Revises:
Create Date: 2026-11-25 15:44:20.105528
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON_TYPE = postgresql.JSONB()

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The first schema: no release ran before it.
backward_compatible = False


def upgrade() -> None:
    op.create_table(
        "mentor_avatars",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("thumbnail_url", sa.Text(), nullable=True),
        sa.Column("is_premium", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("tavus_replica_id", sa.Text(), nullable=False),
        sa.Column("tavus_persona_id", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mentor_avatars")),
    )
    op.create_table(
        "profiles",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("full_name", sa.Text(), nullable=False),
        sa.Column("avatar_url", sa.Text(), nullable=True),
        sa.Column("language", sa.Text(), server_default=sa.text("'en'"), nullable=False),
        sa.Column("subscription_tier", sa.Text(), server_default=sa.text("'free'"), nullable=False),
        sa.Column("onboarding_completed", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("timezone", sa.Text(), server_default=sa.text("'UTC'"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.CheckConstraint(
            "language IN ('en', 'pt', 'es', 'fr')", name=op.f("ck_profiles_language")
        ),
        sa.CheckConstraint(
            "subscription_tier IN ('free', 'paid')", name=op.f("ck_profiles_subscription_tier")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_profiles")),
    )
    with op.batch_alter_table("profiles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_profiles_email"), ["email"], unique=False)

    op.create_table(
        "daily_sessions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("session_type", sa.Text(), nullable=False),
        sa.Column("session_status", sa.Text(), server_default=sa.text("'started'"), nullable=False),
        sa.Column("duration_seconds", sa.Integer(), nullable=True),
        sa.Column("virtue_earned", sa.Text(), nullable=True),
        sa.Column(
            "emotional_snapshot",
            JSON_TYPE,
            nullable=True,
        ),
        sa.Column(
            "key_insights",
            JSON_TYPE,
            nullable=True,
        ),
        sa.Column(
            "suggested_goals",
            JSON_TYPE,
            nullable=True,
        ),
        sa.Column("conversation_transcript", sa.Text(), nullable=True),
        sa.Column(
            "session_metadata",
            JSON_TYPE,
            nullable=True,
        ),
        sa.Column("session_date", sa.Date(), server_default=sa.func.current_date(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.CheckConstraint(
            "session_status IN ('started', 'in_progress', 'completed', 'interrupted', 'failed')",
            name=op.f("ck_daily_sessions_session_status"),
        ),
        sa.CheckConstraint(
            "session_type IN ('face_to_face', 'spoken_presence', 'silent_reflection', 'written_clarity')",
            name=op.f("ck_daily_sessions_session_type"),
        ),
        sa.CheckConstraint(
            "duration_seconds >= 0", name=op.f("ck_daily_sessions_duration_seconds")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["profiles.id"],
            name=op.f("fk_daily_sessions_user_id_profiles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_daily_sessions")),
    )
    with op.batch_alter_table("daily_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_daily_sessions_session_date"), ["session_date"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_daily_sessions_user_id_created_at_id"),
            ["user_id", "created_at", "id"],
            unique=False,
        )

    op.create_table(
        "onboarding_profiles",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("disc_type", sa.Text(), nullable=False),
        sa.Column("enneagram_type", sa.Integer(), nullable=True),
        sa.Column("confidence_score", sa.Numeric(precision=3, scale=2), nullable=True),
        sa.Column(
            "personality_insights",
            JSON_TYPE,
            nullable=True,
        ),
        sa.Column("assessment_transcript", sa.Text(), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.CheckConstraint(
            "disc_type IN ('D', 'I', 'S', 'C')", name=op.f("ck_onboarding_profiles_disc_type")
        ),
        sa.CheckConstraint(
            "confidence_score BETWEEN 0.70 AND 1.00",
            name=op.f("ck_onboarding_profiles_confidence_score"),
        ),
        sa.CheckConstraint(
            "enneagram_type BETWEEN 1 AND 9", name=op.f("ck_onboarding_profiles_enneagram_type")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["profiles.id"],
            name=op.f("fk_onboarding_profiles_user_id_profiles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_onboarding_profiles")),
        sa.UniqueConstraint("user_id", name=op.f("uq_onboarding_profiles_user_id")),
    )
    op.create_table(
        "ritual_preferences",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("timing", sa.Text(), nullable=False),
        sa.Column("duration", sa.Text(), nullable=False),
        sa.Column("style", sa.Text(), nullable=False),
        sa.Column("voice_id", sa.Text(), nullable=False),
        sa.Column("focus_area", sa.Text(), nullable=False),
        sa.Column("elevenlabs_voice_id", sa.Text(), nullable=True),
        sa.Column(
            "session_frequency", sa.Text(), server_default=sa.text("'daily'"), nullable=False
        ),
        sa.Column("preferred_session_time", sa.Time(), nullable=True),
        sa.Column("reminder_enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.CheckConstraint(
            "duration IN ('quick_focused', 'deeper_dive', 'variable')",
            name=op.f("ck_ritual_preferences_duration"),
        ),
        sa.CheckConstraint(
            "session_frequency IN ('daily', 'weekdays', 'custom')",
            name=op.f("ck_ritual_preferences_session_frequency"),
        ),
        sa.CheckConstraint(
            "style IN ('guided_structure', 'open_conversation', 'mixed')",
            name=op.f("ck_ritual_preferences_style"),
        ),
        sa.CheckConstraint(
            "timing IN ('morning_person', 'evening_person', 'flexible')",
            name=op.f("ck_ritual_preferences_timing"),
        ),
        sa.CheckConstraint(
            "voice_id IN ('confident_coach', 'warm_friend', 'gentle_guide', 'wise_mentor')",
            name=op.f("ck_ritual_preferences_voice_id"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["profiles.id"],
            name=op.f("fk_ritual_preferences_user_id_profiles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ritual_preferences")),
        sa.UniqueConstraint("user_id", name=op.f("uq_ritual_preferences_user_id")),
    )
    op.create_table(
        "user_emotional_categories",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("priority_level", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.CheckConstraint(
            "category IN ('stress_management', 'goal_achievement', 'relationships', 'self_worth', 'emotional_regulation', 'work_life_balance', 'personal_growth', 'mindfulness')",
            name=op.f("ck_user_emotional_categories_category"),
        ),
        sa.CheckConstraint(
            "priority_level BETWEEN 1 AND 5",
            name=op.f("ck_user_emotional_categories_priority_level"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["profiles.id"],
            name=op.f("fk_user_emotional_categories_user_id_profiles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_emotional_categories")),
        sa.UniqueConstraint(
            "user_id", "category", name=op.f("uq_user_emotional_categories_user_id_category")
        ),
    )
    op.create_table(
        "user_goals",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("goal_text", sa.Text(), nullable=False),
        sa.Column(
            "goal_type", sa.Text(), server_default=sa.text("'emotional_wellness'"), nullable=False
        ),
        sa.Column("smart_goal", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), server_default=sa.text("'active'"), nullable=False),
        sa.Column("target_date", sa.Date(), nullable=True),
        sa.Column("progress_percentage", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("source", sa.Text(), server_default=sa.text("'onboarding'"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.CheckConstraint(
            "goal_type IN ('emotional_wellness', 'personal_growth', 'relationships', 'career', 'health', 'mindfulness')",
            name=op.f("ck_user_goals_goal_type"),
        ),
        sa.CheckConstraint(
            "source IN ('onboarding', 'session_suggestion', 'user_created')",
            name=op.f("ck_user_goals_source"),
        ),
        sa.CheckConstraint(
            "status IN ('active', 'completed', 'paused', 'archived')",
            name=op.f("ck_user_goals_status"),
        ),
        sa.CheckConstraint(
            "progress_percentage BETWEEN 0 AND 100", name=op.f("ck_user_goals_progress_percentage")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["profiles.id"],
            name=op.f("fk_user_goals_user_id_profiles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_goals")),
    )
    with op.batch_alter_table("user_goals", schema=None) as batch_op:
        batch_op.create_index(
            "ix_user_goals_active_user_id",
            ["user_id"],
            unique=False,
            postgresql_where=sa.text("status = 'active'"),
        )
        batch_op.create_index(batch_op.f("ix_user_goals_user_id"), ["user_id"], unique=False)

    op.create_table(
        "user_personas",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("specialization", sa.Text(), nullable=True),
        sa.Column("tavus_persona_id", sa.Text(), nullable=True),
        sa.Column("replica_id", sa.Text(), nullable=True),
        sa.Column("mentor_avatar_id", sa.Uuid(), nullable=True),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["mentor_avatar_id"],
            ["mentor_avatars.id"],
            name=op.f("fk_user_personas_mentor_avatar_id_mentor_avatars"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["profiles.id"],
            name=op.f("fk_user_personas_user_id_profiles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_personas")),
    )
    with op.batch_alter_table("user_personas", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_user_personas_mentor_avatar_id"), ["mentor_avatar_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_user_personas_user_id_is_active"), ["user_id", "is_active"], unique=False
        )

    op.create_table(
        "mentor_conversations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("daily_session_id", sa.Uuid(), nullable=False),
        sa.Column("user_persona_id", sa.Uuid(), nullable=True),
        sa.Column("tavus_conversation_id", sa.Text(), nullable=True),
        sa.Column("conversation_name", sa.Text(), nullable=False),
        sa.Column("conversation_url", sa.Text(), nullable=True),
        sa.Column("persona_id", sa.Text(), nullable=True),
        sa.Column("replica_id", sa.Text(), nullable=True),
        sa.Column("mentor_name", sa.Text(), nullable=True),
        sa.Column("mentor_avatar_url", sa.Text(), nullable=True),
        sa.Column(
            "session_type", sa.Text(), server_default=sa.text("'face_to_face'"), nullable=False
        ),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_seconds", sa.Integer(), nullable=True),
        sa.Column("shutdown_reason", sa.Text(), nullable=True),
        sa.Column("failure_code", sa.Text(), nullable=True),
        sa.Column("replica_joined_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("shutdown_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("callback_token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.CheckConstraint(
            "session_type IN ('face_to_face', 'extended')",
            name=op.f("ck_mentor_conversations_session_type"),
        ),
        sa.CheckConstraint(
            "status IN ('starting', 'active', 'ending', 'ended', 'failed', 'indeterminate')",
            name=op.f("ck_mentor_conversations_status"),
        ),
        sa.CheckConstraint(
            "duration_seconds >= 0", name=op.f("ck_mentor_conversations_duration_seconds")
        ),
        sa.ForeignKeyConstraint(
            ["daily_session_id"],
            ["daily_sessions.id"],
            name=op.f("fk_mentor_conversations_daily_session_id_daily_sessions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["profiles.id"],
            name=op.f("fk_mentor_conversations_user_id_profiles"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_persona_id"],
            ["user_personas.id"],
            name=op.f("fk_mentor_conversations_user_persona_id_user_personas"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mentor_conversations")),
        sa.UniqueConstraint(
            "daily_session_id", name=op.f("uq_mentor_conversations_daily_session_id")
        ),
        sa.UniqueConstraint(
            "tavus_conversation_id", name=op.f("uq_mentor_conversations_tavus_conversation_id")
        ),
    )
    with op.batch_alter_table("mentor_conversations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_mentor_conversations_live_updated_at",
            ["status", "updated_at"],
            unique=False,
            postgresql_where=sa.text("status IN ('starting', 'active', 'ending', 'indeterminate')"),
        )
        batch_op.create_index(
            batch_op.f("ix_mentor_conversations_user_id_created_at"),
            ["user_id", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_mentor_conversations_user_persona_id"), ["user_persona_id"], unique=False
        )
        batch_op.create_index(
            "uq_mentor_conversations_live_user_id",
            ["user_id"],
            unique=True,
            postgresql_where=sa.text("status IN ('starting', 'active', 'ending', 'indeterminate')"),
        )


def downgrade() -> None:
    with op.batch_alter_table("mentor_conversations", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_mentor_conversations_live_user_id",
            postgresql_where=sa.text("status IN ('starting', 'active', 'ending', 'indeterminate')"),
        )
        batch_op.drop_index(batch_op.f("ix_mentor_conversations_user_persona_id"))
        batch_op.drop_index(batch_op.f("ix_mentor_conversations_user_id_created_at"))
        batch_op.drop_index(
            "ix_mentor_conversations_live_updated_at",
            postgresql_where=sa.text("status IN ('starting', 'active', 'ending', 'indeterminate')"),
        )

    op.drop_table("mentor_conversations")
    with op.batch_alter_table("user_personas", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_personas_user_id_is_active"))
        batch_op.drop_index(batch_op.f("ix_user_personas_mentor_avatar_id"))

    op.drop_table("user_personas")
    with op.batch_alter_table("user_goals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_goals_user_id"))
        batch_op.drop_index(
            "ix_user_goals_active_user_id",
            postgresql_where=sa.text("status = 'active'"),
        )

    op.drop_table("user_goals")
    op.drop_table("user_emotional_categories")
    op.drop_table("ritual_preferences")
    op.drop_table("onboarding_profiles")
    with op.batch_alter_table("daily_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_daily_sessions_user_id_created_at_id"))
        batch_op.drop_index(batch_op.f("ix_daily_sessions_session_date"))

    op.drop_table("daily_sessions")
    with op.batch_alter_table("profiles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_profiles_email"))

    op.drop_table("profiles")
    op.drop_table("mentor_avatars")
