from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, LargeBinary, PrimaryKeyConstraint, Text
from sqlalchemy.orm import Mapped, mapped_column

from facetoface.models.base import Base, check_in, utcnow

IDEMPOTENCY_STATES = ("in_flight", "done")


class IdempotencyKey(Base):
    """An `Idempotency-Key` of `POST /v1/sessions`, scoped to its user.

    Claimed in the transaction that writes the session rows; once the start completed
    (`state = done`), a retry is answered with that session, as it stands, until
    `expires_at`.
    """

    __tablename__ = "idempotency_keys"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("profiles.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(Text)
    #: SHA-256 of the canonical request body: the same key with another body is refused.
    request_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    state: Mapped[str] = mapped_column(Text)
    #: The session this key started (set in the same transaction that writes it).
    daily_session_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("daily_sessions.id", ondelete="SET NULL", deferrable=True, initially="DEFERRED")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: An in-flight claim older than this is abandoned (its process died) and may be resumed.
    locked_until: Mapped[datetime]
    expires_at: Mapped[datetime]

    __table_args__ = (
        PrimaryKeyConstraint("user_id", "key"),
        CheckConstraint(check_in("state", IDEMPOTENCY_STATES), name="state"),
        CheckConstraint("length(key) BETWEEN 1 AND 255", name="key_length"),
        # The purge of expired keys.
        Index(None, "expires_at"),
    )
