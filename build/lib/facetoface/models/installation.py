from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint
from sqlalchemy.orm import Mapped, mapped_column

from facetoface.models.base import Base, utcnow


class Installation(Base):
    """This installation's identity: one row, generated once per database by the migration.

    Every conversation this installation creates at Tavus carries it in its name
    (`<deployment>:<installation>:<session row>`). The reconciler ends only conversations
    that carry it and whose row exists here, so two deployments on one Tavus account — or
    any other app there — never touch each other's conversations.
    """

    __tablename__ = "facetoface_installation"

    #: Always 1: a single-row table.
    singleton: Mapped[int] = mapped_column(primary_key=True, default=1)
    id: Mapped[uuid.UUID] = mapped_column(unique=True, default=uuid.uuid4)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (CheckConstraint("singleton = 1", name="single_row"),)
