from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, Index, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from facetoface.models.base import Base, IDMixin, TimestampsMixin


class UserPersona(IDMixin, TimestampsMixin, Base):
    """A mentor a user has chosen. The persona/replica here override the avatar's."""

    __tablename__ = "user_personas"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("profiles.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Text)
    specialization: Mapped[str | None] = mapped_column(Text)
    tavus_persona_id: Mapped[str | None] = mapped_column(Text)
    replica_id: Mapped[str | None] = mapped_column(Text)
    mentor_avatar_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("mentor_avatars.id", ondelete="SET NULL"), index=True
    )
    is_active: Mapped[bool] = mapped_column(default=True, server_default=text("true"))

    __table_args__ = (Index(None, "user_id", "is_active"),)
