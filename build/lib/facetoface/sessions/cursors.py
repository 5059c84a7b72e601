"""The session list's opaque pagination cursor."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime

from facetoface.conversations.repository import SessionRow
from facetoface.sessions.errors import InvalidCursor


def encode_cursor(row: SessionRow) -> str:
    """An opaque cursor pointing just after `row` in newest-first order."""
    raw = json.dumps({"c": row.created_at.isoformat(), "i": str(row.id)}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The position an `encode_cursor` cursor names; InvalidCursor for anything else."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in ("c", "i")):
            raise ValueError("not a cursor")
        created_at = datetime.fromisoformat(data["c"])
        if created_at.tzinfo is None:
            raise ValueError("naive")
        created_at.astimezone(UTC)  # a time with no UTC value (year 1, +14:00) is refused
        return created_at, uuid.UUID(data["i"])
    except (ValueError, UnicodeDecodeError, OverflowError, TypeError) as exc:
        raise InvalidCursor("Use the `next_cursor` of a previous page.") from exc
