from __future__ import annotations

from datetime import datetime

from sqlalchemy import Text, func
from sqlalchemy.orm import Mapped, mapped_column

from facetoface.models.base import Base


class SchemaRevision(Base):
    """One migration revision and whether it is backward-compatible, written by `facetoface
    migrate` for every revision it knows, so that code older than the database can tell
    whether it may serve it (`facetoface.db.compatibility`)."""

    __tablename__ = "schema_revisions"

    revision: Mapped[str] = mapped_column(Text, primary_key=True)
    #: The revision it follows (None for the first).
    down_revision: Mapped[str | None] = mapped_column(Text)
    #: The previous release's code runs correctly on the schema this revision leaves.
    backward_compatible: Mapped[bool]
    recorded_at: Mapped[datetime] = mapped_column(server_default=func.now())
