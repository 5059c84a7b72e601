"""The origin's column defaults, so its writers (supabase-js inserts without ids) keep working.

The origin's app inserts its onboarding rows (`onboarding_profiles`, `ritual_preferences`,
`user_emotional_categories`, `user_goals`) through supabase-js without an `id`: its tables
defaulted ids with `gen_random_uuid()`. Every uuid `id` gets that default again
— the origin's tables, the three it never migrated, and our own — except `profiles.id`, which is
the auth user's id. Also restored: `onboarding_profiles.completed_at DEFAULT now()`, and the
origin's `updated_at` triggers on the tables users write (`update_updated_at_column()`, now with
a fixed `search_path`). Kept on purpose: `daily_sessions.session_status` defaults to `started`,
not the origin's `completed` (an interrupted insert must not look finished).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 09:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Expand only: column defaults and triggers that keep `updated_at` current.
backward_compatible = True

#: Tables whose `id` is a generated uuid (all but `profiles`, keyed by the auth user's id).
ID_TABLES = (
    "mentor_avatars",
    "onboarding_profiles",
    "ritual_preferences",
    "user_emotional_categories",
    "user_goals",
    "user_personas",
    "daily_sessions",
    "mentor_conversations",
    "tavus_callback_events",
)
#: Tables users update through supabase-js, whose `updated_at` the database keeps (as the
#: origin's triggers did; the origin's own trigger names, so an adopted database has one each).
UPDATED_AT_TABLES = ("profiles", "user_goals", "ritual_preferences", "user_personas")


def upgrade() -> None:
    for table in ID_TABLES:
        op.execute(f"ALTER TABLE public.{table} ALTER COLUMN id SET DEFAULT gen_random_uuid()")
    op.execute("ALTER TABLE public.onboarding_profiles ALTER COLUMN completed_at SET DEFAULT now()")
    op.execute(
        """
        CREATE OR REPLACE FUNCTION public.update_updated_at_column() RETURNS trigger
        LANGUAGE plpgsql SET search_path = '' AS $$
        BEGIN
          NEW.updated_at = now();
          RETURN NEW;
        END
        $$"""
    )
    for table in UPDATED_AT_TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS update_{table}_updated_at ON public.{table}")
        op.execute(
            f"CREATE TRIGGER update_{table}_updated_at BEFORE UPDATE ON public.{table}"
            " FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column()"
        )


def downgrade() -> None:
    for table in UPDATED_AT_TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS update_{table}_updated_at ON public.{table}")
    op.execute("DROP FUNCTION IF EXISTS public.update_updated_at_column()")
    op.execute("ALTER TABLE public.onboarding_profiles ALTER COLUMN completed_at DROP DEFAULT")
    for table in ID_TABLES:
        op.execute(f"ALTER TABLE public.{table} ALTER COLUMN id DROP DEFAULT")
