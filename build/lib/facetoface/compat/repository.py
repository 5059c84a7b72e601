"""The SQL of the origin's routes that the sessions engine does not already have."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from facetoface.models import MentorConversation


class WebhookRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def conversation_row_id(self, tavus_conversation_id: str) -> uuid.UUID | None:
        """Our `mentor_conversations` row bound to this Tavus conversation, if any."""
        mc = MentorConversation
        result = await self.session.execute(
            select(mc.id).where(mc.tavus_conversation_id == tavus_conversation_id)
        )
        return result.scalar_one_or_none()
