"""Conversation names: how this installation recognises its own conversations at Tavus.

Every conversation is created with the name `<deployment>:<installation>:<row id>` —
`DEPLOYMENT_NAME`, the first 12 hex digits of the installation id generated once per database
(`facetoface_installation`), and the `mentor_conversations` id. The reconciler looks unresolved
starts up by this name, and ends a running conversation only when its name carries this
installation's identity *and* its row exists here: two deployments sharing one Tavus account
(staging and production, even with the same `DEPLOYMENT_NAME`), or any other app on it, never
touch each other's conversations.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from facetoface.models import Installation


def name_prefix(deployment: str, installation_id: uuid.UUID) -> str:
    """What every conversation name of this installation starts with."""
    return f"{deployment}:{installation_id.hex[:12]}:"


def conversation_name(prefix: str, row_id: uuid.UUID) -> str:
    return f"{prefix}{row_id}"


def row_id_from_name(prefix: str, name: str | None) -> uuid.UUID | None:
    """The `mentor_conversations` id a name of this installation carries, else None."""
    if not name or not name.startswith(prefix):
        return None
    try:
        return uuid.UUID(name[len(prefix) :])
    except ValueError:
        return None


async def installation_id(session: AsyncSession) -> uuid.UUID:
    """This database's installation id (written once by migration 0006)."""
    return (await session.execute(select(Installation.id))).scalar_one()


def memory_tag(deployment_name: str, user_id: uuid.UUID) -> str:
    """The user's Tavus memory tag: `participant_tags` / legacy `memory_stores` at create, how
    their memory stores are found again (to show, pin to or erase them)."""
    return f"{deployment_name}:{user_id}"
