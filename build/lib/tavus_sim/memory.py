"""Simulated Tavus memory: Memory Stores and legacy memory tags, and the mentor's recall.

Tavus has two memory systems, kept apart here as there:

- **Memory Stores** (current): one store per (persona, participant tag). A conversation created
  with ``participant_tags: ["<tag>"]`` (one tag today) creates or reuses the store of its
  persona and that tag; ``/v2/memory-stores`` creates, lists (by ``pal_id`` and/or
  ``participant_tag``), reads and deletes them. A deleted store is gone for good: the next
  conversation with the same tag starts a fresh, empty one.
- **Legacy memory tags**: ``memory_stores: ["<tag>", ...]`` on create; one bucket per tag,
  shared by every conversation (and persona) using the tag; not visible in the API.

What is "learned": when a live conversation shuts down, each thing the participant said
becomes a memory of the conversation's store and legacy buckets (test-mode conversations have
no room activity and learn nothing). The simulated mentor recalls in its first answer of a
*later* conversation the last thing said in the most recent earlier one — deterministic text,
``Last time you mentioned «…».`` — and only from the store or buckets of that conversation, so
memory never crosses participant tags (nor personas, for Memory Stores).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tavus_sim.state import Conversation, isoformat, utcnow

#: Memories kept per store or bucket; the oldest go first.
MAX_MEMORIES = 50
_MEMORY_MAX_CHARS = 160


def new_memory_store_id() -> str:
    """A fresh memory store id: ``ms`` followed by 12 hex characters."""
    return "ms" + secrets.token_hex(6)


def _shorten(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _MEMORY_MAX_CHARS else flat[: _MEMORY_MAX_CHARS - 1] + "…"


@dataclass(slots=True)
class Memory:
    """One learned memory: something the participant said in a conversation."""

    content: str
    conversation_id: str
    created_at: datetime = field(default_factory=utcnow)

    def to_json(self) -> dict[str, Any]:
        """The memory as the get endpoint shows it."""
        return {
            "content": self.content,
            "conversation_id": self.conversation_id,
            "created_at": isoformat(self.created_at),
        }


def _remember(memories: list[Memory], conversation: Conversation) -> None:
    for entry in conversation.transcript:
        if entry.role == "user" and entry.content.strip():
            memories.append(Memory(_shorten(entry.content), conversation.conversation_id))
    del memories[:-MAX_MEMORIES]


def _last_said_before(memories: list[Memory], conversation_id: str) -> str | None:
    """The last memory of the most recent *other* conversation."""
    for memory in reversed(memories):
        if memory.conversation_id != conversation_id:
            return memory.content
    return None


@dataclass(slots=True)
class MemoryStore:
    """A Memory Store: one persona's memory of one participant."""

    memory_store_id: str
    pal_id: str
    participant_tag: str
    pinned_memories: list[str]
    learned: list[Memory] = field(default_factory=list)
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)

    def summary_json(self) -> dict[str, Any]:
        """The store as the list endpoint shows it."""
        return {
            "memory_store_id": self.memory_store_id,
            "pal_id": self.pal_id,
            "participant_tag": self.participant_tag,
            "created_at": isoformat(self.created_at),
            "updated_at": isoformat(self.updated_at),
        }

    def to_json(self) -> dict[str, Any]:
        """The store as the get endpoint shows it: pinned and learned memories."""
        return {
            **self.summary_json(),
            "pinned_memories": list(self.pinned_memories),
            "learned_memories": [memory.to_json() for memory in self.learned],
        }


class StoreExists(Exception):
    """A second active store for the same persona and participant tag."""


class MemoryBank:
    """Every memory store and legacy bucket of the simulated account."""

    def __init__(self) -> None:
        self.stores: dict[str, MemoryStore] = {}
        self.legacy: dict[str, list[Memory]] = {}

    def reset(self) -> None:
        """Forget everything."""
        self.stores.clear()
        self.legacy.clear()

    # --- the memory-stores API -------------------------------------------------------------

    def find(self, pal_id: str, participant_tag: str) -> MemoryStore | None:
        """The active store of this persona and participant tag, if any."""
        for store in self.stores.values():
            if store.pal_id == pal_id and store.participant_tag == participant_tag:
                return store
        return None

    def create(
        self, pal_id: str, participant_tag: str, pinned_memories: list[str] | None = None
    ) -> MemoryStore:
        """A new store; ``StoreExists`` when one is active for the pair already."""
        if self.find(pal_id, participant_tag) is not None:
            raise StoreExists
        store = MemoryStore(
            memory_store_id=self._fresh_id(),
            pal_id=pal_id,
            participant_tag=participant_tag,
            pinned_memories=list(pinned_memories or []),
        )
        self.stores[store.memory_store_id] = store
        return store

    def matching(self, pal_id: str | None, participant_tag: str | None) -> list[MemoryStore]:
        """Stores filtered by persona and/or participant tag, oldest first."""
        return [
            store
            for store in self.stores.values()
            if (pal_id is None or store.pal_id == pal_id)
            and (participant_tag is None or store.participant_tag == participant_tag)
        ]

    def delete(self, memory_store_id: str) -> bool:
        """Delete a store for good; ``False`` when there is none with this id."""
        return self.stores.pop(memory_store_id, None) is not None

    def _fresh_id(self) -> str:
        store_id = new_memory_store_id()
        while store_id in self.stores:
            store_id = new_memory_store_id()
        return store_id

    # --- conversations -------------------------------------------------------------------

    def attach(self, conversation: Conversation) -> None:
        """At create: bind a live conversation to its store (created if needed) and buckets."""
        if conversation.test_mode:
            return
        persona_id = conversation.persona_id
        for tag in conversation.participant_tags[:1]:
            if persona_id is None:
                break
            store = self.find(persona_id, tag) or self.create(persona_id, tag)
            conversation.memory_store_id = store.memory_store_id
        for tag in conversation.memory_tags:
            self.legacy.setdefault(tag, [])

    def learn(self, conversation: Conversation) -> None:
        """At shutdown: what the participant said becomes memories of the conversation's store
        (if it still exists) and legacy buckets."""
        if conversation.test_mode:
            return
        store = self.stores.get(conversation.memory_store_id or "")
        if store is not None:
            _remember(store.learned, conversation)
            store.updated_at = utcnow()
        for tag in conversation.memory_tags:
            _remember(self.legacy.setdefault(tag, []), conversation)

    def recall(self, conversation: Conversation) -> str | None:
        """What the mentor brings up from earlier conversations, or ``None``.

        The last thing the participant said in the most recent earlier conversation of this
        conversation's store, else of its first legacy bucket with memories; failing those, the
        store's first pinned memory.
        """
        store = self.stores.get(conversation.memory_store_id or "")
        candidates = [store.learned] if store is not None else []
        candidates += [self.legacy.get(tag, []) for tag in conversation.memory_tags]
        for memories in candidates:
            said = _last_said_before(memories, conversation.conversation_id)
            if said is not None:
                return f"Last time you mentioned «{said}»."
        if store is not None and store.pinned_memories:
            return f"I keep in mind: «{_shorten(store.pinned_memories[0])}»."
        return None

    def legacy_json(self) -> dict[str, Any]:
        """The legacy buckets, for the ``/_sim`` control API."""
        return {
            tag: [memory.to_json() for memory in memories] for tag, memories in self.legacy.items()
        }
