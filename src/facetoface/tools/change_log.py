"""The goal-change log the user reads and undoes (`/v1/me/goal-changes`).

Undo restores the value before the change: the progress it had, or — for a goal the mentor
added — archives it. It is idempotent (undoing twice answers the same), and it refuses
(409 `goal_changed_since`) when the goal no longer holds what the change set: undoing then
would throw away a newer value. It runs as the user, under row-level security.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime

import structlog

from facetoface.clock import utcnow
from facetoface.db import Database, Identity
from facetoface.errors import BadRequest
from facetoface.models.mentor_action import GoalChangeKind
from facetoface.models.user_goal import GoalStatus
from facetoface.tools.errors import GoalChangedSince, GoalChangeNotFound
from facetoface.tools.recording import record_undo
from facetoface.tools.repository import ActionsRepository, ChangeRow
from facetoface.tools.schemas import GoalChangeOut, GoalChangePage

log = structlog.get_logger(__name__)


class InvalidCursor(BadRequest):
    code = "invalid_cursor"
    title = "Invalid cursor"


def encode_cursor(row: ChangeRow) -> str:
    """The opaque position after `row` (newest first)."""
    raw = f"{row.change.created_at.isoformat()}|{row.change.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, _, change_id = raw.partition("|")
        when = datetime.fromisoformat(at)
        if when.tzinfo is None:
            raise ValueError("naive")
        return when, uuid.UUID(change_id)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidCursor("The cursor is not one this API gave out.") from exc


def change_out(row: ChangeRow) -> GoalChangeOut:
    c = row.change
    before = c.before_value.get("progress_percentage") if c.before_value else None
    after = c.after_value.get("progress_percentage") if c.after_value else None
    return GoalChangeOut(
        id=c.id,
        goal_id=c.goal_id,
        goal_text=row.goal_text,
        session_id=c.session_id,
        kind=GoalChangeKind(c.kind),
        source=c.source,
        before=before,
        after=after,
        note=c.note,
        created_at=c.created_at,
        undone_at=c.undone_at,
    )


class GoalChangeLog:
    """Reading and undoing the mentor's changes to the caller's goals."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def page(
        self,
        identity: Identity,
        *,
        limit: int,
        cursor: str | None,
        session_id: uuid.UUID | None,
    ) -> GoalChangePage:
        """A page of the caller's changes, newest first (optionally one session's)."""
        before = decode_cursor(cursor) if cursor else None
        async with self.db.transaction(identity, role="user") as s:
            rows = await ActionsRepository(s).changes(
                limit=limit + 1, before=before, session_id=session_id
            )
        page = rows[:limit]
        return GoalChangePage(
            items=[change_out(row) for row in page],
            next_cursor=encode_cursor(page[-1]) if len(rows) > limit else None,
        )

    async def undo(self, identity: Identity, change_id: uuid.UUID) -> GoalChangeOut:
        """Restore the goal as it was before the change (see the module docstring)."""
        now = utcnow()
        async with self.db.transaction(identity, role="user") as s:
            repo = ActionsRepository(s)
            row = await repo.change_for_update(change_id)
            if row is None:
                raise GoalChangeNotFound("No goal change of yours has this id.")
            change = row.change
            if change.undone_at is not None:
                return change_out(row)
            if change.kind == GoalChangeKind.added:
                if row.goal_status != GoalStatus.active:
                    raise GoalChangedSince("The goal is no longer active; nothing to undo.")
                await repo.set_status(change.goal_id, GoalStatus.archived, now)
            else:
                if row.goal_progress != change.after_value.get("progress_percentage"):
                    raise GoalChangedSince(
                        f"The goal's progress is {row.goal_progress} % now, not what this "
                        "change set; undoing it would lose that."
                    )
                before = int((change.before_value or {}).get("progress_percentage") or 0)
                await repo.set_progress(change.goal_id, before, now)
            await record_undo(repo, change, now)
            undone = change_out(row).model_copy(update={"undone_at": now})
        log.info("goal_change.undone", kind=change.kind)
        return undone
