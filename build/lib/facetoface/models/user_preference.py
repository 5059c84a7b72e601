from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, func, text
from sqlalchemy.orm import Mapped, mapped_column

from facetoface.models.base import Base, utcnow


class UserPreference(Base):
    """A user's choices about the service itself (not the origin's profile data); one row per
    user, absent until they change something (every choice has a default)."""

    __tablename__ = "user_preferences"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("profiles.id", ondelete="CASCADE"), primary_key=True
    )
    #: The mentor may carry things over from earlier sessions: the "since last time" context
    #: section and, when the deployment enables it (`TAVUS_MEMORY`), Tavus's memory.
    mentor_memory: Mapped[bool] = mapped_column(default=True, server_default=text("true"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
