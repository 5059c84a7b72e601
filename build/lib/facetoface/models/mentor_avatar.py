from __future__ import annotations

from sqlalchemy import Text, text
from sqlalchemy.orm import Mapped, mapped_column

from facetoface.models.base import Base, IDMixin, TimestampsMixin


class MentorAvatar(IDMixin, TimestampsMixin, Base):
    """A mentor's display metadata and the Tavus replica (and optional persona) behind it."""

    __tablename__ = "mentor_avatars"

    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    thumbnail_url: Mapped[str | None] = mapped_column(Text)
    is_premium: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    is_active: Mapped[bool] = mapped_column(default=True, server_default=text("true"))
    tavus_replica_id: Mapped[str] = mapped_column(Text)
    tavus_persona_id: Mapped[str | None] = mapped_column(Text)
