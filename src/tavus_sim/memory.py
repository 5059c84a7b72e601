"""Simulated Tavus memory: Memory Stores and legacy memory tags, and the mentor's recall.

Tavus has two memory systems, kept apart here as there:

- **Memory Stores** (current): one store per (account, persona, participant tag). A
  conversation created with ``participant_tags: ["<tag>"]`` (one tag today) creates or reuses
  the store of its persona and that tag, in the account (API key) that created it;
  ``/v2/memory-stores`` creates, lists (by ``pal_id`` and/or ``participant_tag``), reads and
  deletes them, pins and unpins memories and reads the learned memory. Another account's store
  is a 403. A deleted store is gone for good: the next conversation with the same tag starts a
  fresh, empty one.
- **Legacy memory tags**: ``memory_stores: ["<tag>", ...]`` on create; one bucket per tag,
  shared by every conversation (and persona) using the tag; not visible in the API.

What is "learned": when a live conversation shuts down, each thing the participant said
becomes a memory of the conversation's store and legacy buckets (test-mode conversations have
no room activity and learn nothing) — except what a ``remember`` tool call handed to the app
(the app pinned it; forgetting the pin must forget it). A store also keeps each ended
conversation's turns, from which its learned **profile** (facts, digest.profile) and
**timeline** (one entry per conversation with its summary, newest first) are consolidated on
read.

The simulated mentor recalls in its first answer of a *later* conversation the last thing
said in the most recent earlier one — ``Last time you mentioned «…».`` — and every pinned
memory of the store — ``I keep in mind: «…»; «…».`` — only from the store or buckets of that
conversation, so memory never crosses participant tags (nor personas, for Memory Stores).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tavus_sim import digest
from tavus_sim.state import Conversation, isoformat, utcnow

#: Memories kept per store or bucket; the oldest go first.
MAX_MEMORIES = 50
_MEMORY_MAX_CHARS = 160


#: Pinned memories per store.
MAX_PINNED = 100
#: Timeline entries shown.
TIMELINE_ENTRIES = 20


def new_memory_store_id() -> str:
    """A fresh memory store id: ``ms`` followed by 12 hex characters."""
    return "ms" + secrets.token_hex(6)


def new_pinned_memory_id() -> str:
    """A fresh pinned memory id: ``pm`` followed by 12 hex characters."""
    return "pm" + secrets.token_hex(6)


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


@dataclass(slots=True)
class PinnedMemory:
    """A fact set by the app (``POST …/pinned``), kept until unpinned."""

    memory_id: str
    memory: str
    created_at: datetime = field(default_factory=utcnow)

    def to_json(self) -> dict[str, Any]:
        """The pinned memory as the API shows it."""
        return {
            "memory_id": self.memory_id,
            "memory": self.memory,
            "created_at": isoformat(self.created_at),
        }


@dataclass(slots=True)
class PastConversation:
    """An ended conversation of a store, as learned memory keeps it."""

    conversation_id: str
    ended_at: datetime
    context: str
    user_turns: list[str]

    def timeline_json(self) -> dict[str, Any]:
        """One entry of ``timeline.recent_conversations``."""
        return {
            "conversation_id": self.conversation_id,
            "ended_at": isoformat(self.ended_at),
            "summary": digest.summary(self.context, self.user_turns),
        }


def _learnable(conversation: Conversation) -> list[str]:
    """The user's turns that memory may learn (not those handed to the app to pin)."""
    return [
        entry.content
        for index, entry in enumerate(conversation.transcript)
        if entry.role == "user" and entry.content.strip() and index not in conversation.pinned_turns
    ]


def _remember(memories: list[Memory], conversation: Conversation) -> None:
    for content in _learnable(conversation):
        memories.append(Memory(_shorten(content), conversation.conversation_id))
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
    account: str
    """The API key that owns it (never shown)."""
    pinned: list[PinnedMemory] = field(default_factory=list)
    learned: list[Memory] = field(default_factory=list)
    past: list[PastConversation] = field(default_factory=list)
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
        """The store as the get endpoint shows it: pinned (as texts, as created, and with their
        ids under ``pinned``) and learned memories."""
        return {
            **self.summary_json(),
            "pinned_memories": [memory.memory for memory in self.pinned],
            "pinned": [memory.to_json() for memory in self.pinned],
            "learned_memories": [memory.to_json() for memory in self.learned],
        }

    def pin(self, memory: str) -> PinnedMemory:
        """Pin a fact (``TooManyPinned`` beyond ``MAX_PINNED``)."""
        if len(self.pinned) >= MAX_PINNED:
            raise TooManyPinned
        taken = {item.memory_id for item in self.pinned}
        memory_id = new_pinned_memory_id()
        while memory_id in taken:
            memory_id = new_pinned_memory_id()
        pinned = PinnedMemory(memory_id=memory_id, memory=memory)
        self.pinned.append(pinned)
        self.updated_at = utcnow()
        return pinned

    def unpin(self, memory_id: str) -> bool:
        """Remove one pinned memory; ``False`` when the store has none with this id."""
        for index, item in enumerate(self.pinned):
            if item.memory_id == memory_id:
                del self.pinned[index]
                self.updated_at = utcnow()
                return True
        return False

    def profile(self) -> dict[str, Any]:
        """Learned facts about the participant, consolidated from every past conversation."""
        return digest.profile(turn for past in self.past for turn in past.user_turns)

    def timeline(self) -> dict[str, Any]:
        """Learned timeline: the most recent conversations with their summaries."""
        recent = sorted(self.past, key=lambda past: past.ended_at, reverse=True)
        return {"recent_conversations": [p.timeline_json() for p in recent[:TIMELINE_ENTRIES]]}


class StoreExists(Exception):
    """A second active store for the same persona and participant tag."""


class TooManyPinned(Exception):
    """A store already holds ``MAX_PINNED`` pinned memories."""


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

    def find(self, account: str, pal_id: str, participant_tag: str) -> MemoryStore | None:
        """The account's active store of this persona and participant tag, if any."""
        for store in self.stores.values():
            if (store.account, store.pal_id, store.participant_tag) == (
                account,
                pal_id,
                participant_tag,
            ):
                return store
        return None

    def create(
        self,
        account: str,
        pal_id: str,
        participant_tag: str,
        pinned_memories: list[str] | None = None,
    ) -> MemoryStore:
        """A new store; ``StoreExists`` when one is active for the pair already."""
        if self.find(account, pal_id, participant_tag) is not None:
            raise StoreExists
        store = MemoryStore(
            memory_store_id=self._fresh_id(),
            pal_id=pal_id,
            participant_tag=participant_tag,
            account=account,
        )
        for memory in (pinned_memories or [])[:MAX_PINNED]:
            store.pin(memory)
        self.stores[store.memory_store_id] = store
        return store

    def matching(
        self, account: str, pal_id: str | None, participant_tag: str | None
    ) -> list[MemoryStore]:
        """The account's stores filtered by persona and/or participant tag, oldest first."""
        return [
            store
            for store in self.stores.values()
            if store.account == account
            and (pal_id is None or store.pal_id == pal_id)
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
            account = conversation.account
            store = self.find(account, persona_id, tag) or self.create(account, persona_id, tag)
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
            turns = _learnable(conversation)
            if turns:
                store.past.append(
                    PastConversation(
                        conversation_id=conversation.conversation_id,
                        ended_at=conversation.ended_at or utcnow(),
                        context=conversation.conversational_context,
                        user_turns=turns,
                    )
                )
            store.updated_at = utcnow()
        for tag in conversation.memory_tags:
            _remember(self.legacy.setdefault(tag, []), conversation)

    def recall(self, conversation: Conversation) -> str | None:
        """What the mentor brings up from earlier conversations, or ``None``.

        The last thing the participant said in the most recent earlier conversation of this
        conversation's store, else of its first legacy bucket with memories; then every pinned
        memory of the store, as it stands now.
        """
        store = self.stores.get(conversation.memory_store_id or "")
        candidates = [store.learned] if store is not None else []
        candidates += [self.legacy.get(tag, []) for tag in conversation.memory_tags]
        parts: list[str] = []
        for memories in candidates:
            said = _last_said_before(memories, conversation.conversation_id)
            if said is not None:
                parts.append(f"Last time you mentioned «{said}».")
                break
        pinned = self.pinned_of(conversation)
        if pinned:
            parts.append("I keep in mind: " + "; ".join(f"«{item}»" for item in pinned) + ".")
        return " ".join(parts) or None

    def pinned_of(self, conversation: Conversation) -> list[str]:
        """The pinned memories of the conversation's store (shortened), oldest first."""
        store = self.stores.get(conversation.memory_store_id or "")
        return [] if store is None else [_shorten(item.memory) for item in store.pinned]

    def knows(self, conversation: Conversation) -> str:
        """The mentor's answer to "what do you remember about me?": pinned memories and the
        learned profile of the conversation's store."""
        store = self.stores.get(conversation.memory_store_id or "")
        if store is None:
            return "I don't keep memories of our conversations."
        facts = [f"«{item}»" for item in self.pinned_of(conversation)]
        for key, value in store.profile().items():
            shown = ", ".join(value) if isinstance(value, list) else value
            facts.append(f"{key.replace('_', ' ')}: {shown}")
        if not facts:
            return "I don't remember anything about you yet."
        return "Here is what I remember about you: " + "; ".join(facts) + "."

    def legacy_json(self) -> dict[str, Any]:
        """The legacy buckets, for the ``/_sim`` control API."""
        return {
            tag: [memory.to_json() for memory in memories] for tag, memories in self.legacy.items()
        }
