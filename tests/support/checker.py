"""A Jepsen-style checker: after a scenario (and a reconciler pass), do the invariants hold?

- every start we acknowledged (201) maps to exactly one Tavus conversation;
- no conversation at the simulator is running without a live session;
- every callback we acknowledged with 2xx is stored exactly once;
- every session is terminal, or live with a conversation running at Tavus.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from facetoface.conversations.events import dedupe_key, parse_body
from facetoface.conversations.status import LIVE_STATUSES
from facetoface.db import Database
from facetoface.models import MentorConversation, TavusCallbackEvent
from facetoface.tavus_sim import SimServer


@dataclass
class History:
    """What clients were told during a scenario."""

    starts: list[dict[str, Any]] = field(default_factory=list)  # 201 bodies
    start_statuses: Counter[int] = field(default_factory=Counter)
    callbacks: list[tuple[uuid.UUID, bytes]] = field(default_factory=list)  # acked 2xx
    other_statuses: Counter[int] = field(default_factory=Counter)

    def operations(self) -> int:
        return sum(self.start_statuses.values()) + sum(self.other_statuses.values())


@dataclass
class Verdict:
    acknowledged_starts: int
    conversations_at_tavus: int
    duplicates: int
    orphans: int
    lost_callbacks: int
    unexplained_sessions: int
    statuses: dict[str, int]

    @property
    def ok(self) -> bool:
        return not (
            self.duplicates or self.orphans or self.lost_callbacks or self.unexplained_sessions
        )


async def check(db: Database, sim: SimServer, history: History, prefix: str) -> Verdict:
    """Judge a history against Tavus's (the simulator's) and our database's final state;
    `prefix` is what this installation's conversation names start with."""
    conversations = sim.conversations()["conversations"]
    by_name = Counter(c.get("conversation_name") for c in conversations)
    ours = [c for c in conversations if (c.get("conversation_name") or "").startswith(prefix)]
    async with db.transaction() as session:
        rows = {
            row.id: row
            for row in await session.execute(
                select(
                    MentorConversation.id,
                    MentorConversation.daily_session_id,
                    MentorConversation.status,
                    MentorConversation.tavus_conversation_id,
                )
            )
        }
        stored_keys = set((await session.execute(select(TavusCallbackEvent.dedupe_key))).scalars())

    # 1. one conversation per acknowledged start (and none created twice for one session)
    duplicates = sum(count - 1 for name, count in by_name.items() if name and count > 1)
    acked = {body["mentor_conversation_id"]: body for body in history.starts}
    for row_id, body in acked.items():
        matching = [c for c in ours if c["conversation_name"] == f"{prefix}{row_id}"]
        if len(matching) != 1 or matching[0]["conversation_id"] != body["conversation_id"]:
            duplicates += 1

    # 2. nothing runs at Tavus without a live session
    live = {s.value for s in LIVE_STATUSES}
    orphans = 0
    for conversation in ours:
        if conversation["status"] != "active":
            continue
        row = rows.get(uuid.UUID(conversation["conversation_name"].removeprefix(prefix)))
        if row is None or row.status not in live:
            orphans += 1

    # 3. every acknowledged callback stored exactly once (the key is unique: "once" holds)
    lost = 0
    for row_id, body in history.callbacks:
        if dedupe_key(row_id, parse_body(body)) not in stored_keys:
            lost += 1

    # 4. every session terminal, or live with its conversation running at Tavus
    active_ids = {c["conversation_id"] for c in ours if c["status"] == "active"}
    unexplained = 0
    for row in rows.values():
        if row.status in {"ended", "failed"}:
            continue
        if row.status in {"active", "ending"} and row.tavus_conversation_id in active_ids:
            continue
        unexplained += 1

    return Verdict(
        acknowledged_starts=len(acked),
        conversations_at_tavus=len(ours),
        duplicates=duplicates,
        orphans=orphans,
        lost_callbacks=lost,
        unexplained_sessions=unexplained,
        statuses=dict(Counter(row.status for row in rows.values())),
    )


def callback_body(conversation_id: str, event_type: str, **properties: Any) -> bytes:
    return json.dumps(
        {
            "conversation_id": conversation_id,
            "event_type": event_type,
            "message_type": event_type.split(".")[0],
            "timestamp": "2026-11-25T10:00:00Z",
            "properties": properties,
        }
    ).encode()
