from __future__ import annotations

from sqlalchemy import CheckConstraint, Index, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from facetoface.models.base import Base, IDMixin, TimestampsMixin, check_in

LANGUAGES = ("en", "pt", "es", "fr")
SUBSCRIPTION_TIERS = ("free", "paid")


class Profile(IDMixin, TimestampsMixin, Base):
    """A user's profile; `id` is the auth user id (the token's `sub`)."""

    __tablename__ = "profiles"

    email: Mapped[str] = mapped_column(Text)
    full_name: Mapped[str] = mapped_column(Text)
    avatar_url: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str] = mapped_column(Text, default="en", server_default=text("'en'"))
    subscription_tier: Mapped[str] = mapped_column(
        Text, default="free", server_default=text("'free'")
    )
    onboarding_completed: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    timezone: Mapped[str] = mapped_column(Text, default="UTC", server_default=text("'UTC'"))

    __table_args__ = (
        CheckConstraint(check_in("language", LANGUAGES), name="language"),
        CheckConstraint(
            check_in("subscription_tier", SUBSCRIPTION_TIERS), name="subscription_tier"
        ),
        Index(None, "email"),
    )
