"""The preferences' SQL: one round trip each, as the caller (`authenticated`,
confined to their own row by row-level security, migration 0009)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from facetoface.db import Database, Identity, Statement


@dataclass(frozen=True, slots=True)
class StoredPreferences:
    """The caller's row (None fields: no row yet, the defaults apply)."""

    mentor_memory: bool | None
    updated_at: datetime | None


READ_SQL = Statement(
    "SELECT pr.mentor_memory, pr.updated_at FROM profiles p "
    "LEFT JOIN user_preferences pr ON pr.user_id = p.id WHERE p.id = %(user_id)s"
)
#: Written only for a user with a profile (the row belongs to it and goes with it).
WRITE_SQL = Statement(
    "INSERT INTO user_preferences (user_id, mentor_memory, updated_at) "
    "SELECT p.id, %(mentor_memory)s, %(now)s FROM profiles p WHERE p.id = %(user_id)s "
    "ON CONFLICT (user_id) DO UPDATE SET mentor_memory = EXCLUDED.mentor_memory, "
    "updated_at = EXCLUDED.updated_at RETURNING mentor_memory, updated_at"
)


class PreferencesRepository:
    """Reads and writes the caller's `user_preferences` row."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, identity: Identity) -> StoredPreferences | None:
        """The caller's preferences; None when they have no profile."""
        params = {"user_id": identity.user_id}
        rows = await self.db.run(READ_SQL, params, identity, role="user")
        return StoredPreferences(**rows[0]) if rows else None

    async def put(
        self, identity: Identity, *, mentor_memory: bool, now: datetime
    ) -> StoredPreferences | None:
        """Store the caller's preferences; None when they have no profile."""
        params = {"user_id": identity.user_id, "mentor_memory": mentor_memory, "now": now}
        rows = await self.db.run(WRITE_SQL, params, identity, role="user")
        return StoredPreferences(**rows[0]) if rows else None
