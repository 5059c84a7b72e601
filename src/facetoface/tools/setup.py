"""`facetoface tavus setup`: register the mentor's tools at Tavus and attach them to every
mentor's PAL (the default one and each active mentor avatar's), changing only what differs
(`tavus.mentor_tools`). `doctor --fix` runs it too."""

from __future__ import annotations

from sqlalchemy import select

from facetoface.config import ConfigurationError, Settings
from facetoface.db import Database
from facetoface.models import MentorAvatar
from facetoface.tavus import TavusClient
from facetoface.tavus.mentor_tools import SetupResult, provision


async def mentor_pal_ids(settings: Settings, db: Database) -> list[str]:
    """Every PAL a session may talk to: the default and the active mentor avatars'."""
    async with db.transaction(role="service") as session:
        rows = await session.execute(
            select(MentorAvatar.tavus_persona_id)
            .where(MentorAvatar.is_active.is_(True), MentorAvatar.tavus_persona_id.is_not(None))
            .distinct()
        )
        avatars = [pal for pal in rows.scalars() if pal]
    default = [settings.default_persona_id] if settings.default_persona_id else []
    return list(dict.fromkeys([*default, *sorted(avatars)]))


async def setup_tools(
    settings: Settings, db: Database, tavus: TavusClient, *, replace: bool = False
) -> tuple[list[str], SetupResult]:
    """Provision the tools; the PALs they were attached to and what changed."""
    secret = settings.tool_secret
    if secret is None:
        raise ConfigurationError(
            "TAVUS_TOOL_SECRET is not set: the mentor's tools are off (set it, then run "
            "`facetoface tavus setup`)"
        )
    pals = await mentor_pal_ids(settings, db)
    if not pals:
        raise ConfigurationError(
            "no PAL to attach the tools to: set TAVUS_DEFAULT_PERSONA_ID (or give the mentor "
            "avatars a tavus_persona_id)"
        )
    result = await provision(tavus, settings.public_base_url, secret, pals, replace=replace)
    return pals, result
