"""The caller's preferences: read (with defaults) and replace."""

from __future__ import annotations

import structlog

from facetoface.clock import utcnow
from facetoface.db import Identity
from facetoface.errors import ProfileNotFound
from facetoface.preferences.repository import PreferencesRepository, StoredPreferences
from facetoface.preferences.schemas import PreferencesOut, PreferencesUpdate

log = structlog.get_logger(__name__)

#: Every preference's default (a user without a row has these).
DEFAULT_MENTOR_MEMORY = True


class PreferencesService:
    """Preferences of the caller only: the identity comes from the token."""

    def __init__(self, repository: PreferencesRepository) -> None:
        self.repository = repository

    async def get(self, identity: Identity) -> PreferencesOut:
        """The caller's preferences; 404 `profile_not_found` without a profile."""
        return _out(await self.repository.get(identity))

    async def put(self, identity: Identity, update: PreferencesUpdate) -> PreferencesOut:
        """Replace the caller's preferences; 404 `profile_not_found` without a profile."""
        stored = await self.repository.put(
            identity, mentor_memory=update.mentor_memory, now=utcnow()
        )
        out = _out(stored)
        log.info("preferences.updated", mentor_memory=out.mentor_memory)
        return out


def _out(stored: StoredPreferences | None) -> PreferencesOut:
    if stored is None:
        raise ProfileNotFound("Create the user's profile before setting preferences.")
    memory = stored.mentor_memory
    return PreferencesOut(
        mentor_memory=DEFAULT_MENTOR_MEMORY if memory is None else memory,
        updated_at=stored.updated_at,
    )
