"""What the simulator's "post-call AI" reads out of a transcript. Deterministic, no LLM.

Used for post-call actions (the arguments of a ``post_call`` tool) and for Memory Stores'
learned memory (the profile and the timeline):

- **summary**: the user's name (from the context) and their turns, quoted and shortened —
  "Ana talked about «Work is piling up» and «I started running again» (2 turns).".
- **next_steps**: the user's own commitments ("I will…", "I'll…", "I'm going to…",
  "tomorrow I…", "next week I…"), else one step towards the context's first goal, else a
  generic one.
- **goal_updates**: every percentage the user gave for a goal of the context
  (intents.progress), the last one per goal, in order of first mention.
- **mood**: counted mood words of the user's turns: ``positive``, ``negative``, ``mixed`` or
  ``neutral``.
- **profile facts**: "my name is X", "call me X", "I live in X", "I work as X", "my <thing> is
  called|named X", "my <thing>'s name is X" → keys ``name``, ``location``, ``occupation``,
  ``<thing>_name``; "I like|love|enjoy X" → ``likes`` (a list). Later statements win.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from tavus_sim import mentor
from tavus_sim.intents import context_goals, progress

_TURN_MAX_CHARS = 80
_SUMMARY_TURNS = 3
_STEP_MAX_CHARS = 160
_COMMITMENT = re.compile(
    r"\b(?:(?:tomorrow|next\s+week)\s+I(?:\s+will|'ll)?|I\s+will|I'll|I\s+am\s+going\s+to|"
    r"I'm\s+going\s+to|I\s+plan\s+to)\s+(?P<step>[^.!?]*[^\s.!?])",
    re.IGNORECASE,
)
_POSITIVE = frozenset(
    [
        "good",
        "great",
        "happy",
        "glad",
        "excited",
        "proud",
        "calm",
        "better",
        "relieved",
        "grateful",
        "motivated",
        "fine",
    ]
)
_NEGATIVE = frozenset(
    [
        "bad",
        "sad",
        "tired",
        "stressed",
        "anxious",
        "worried",
        "overwhelmed",
        "angry",
        "frustrated",
        "lonely",
        "worse",
        "exhausted",
        "down",
    ]
)
_FACTS: tuple[tuple[re.Pattern[str], str | None], ...] = (
    (re.compile(r"\bmy name is (?P<value>[^.,!?]+)", re.IGNORECASE), "name"),
    (re.compile(r"\bcall me (?P<value>[^.,!?]+)", re.IGNORECASE), "name"),
    (re.compile(r"\bI live in (?P<value>[^.,!?]+)", re.IGNORECASE), "location"),
    (re.compile(r"\bI work as (?:an? )?(?P<value>[^.,!?]+)", re.IGNORECASE), "occupation"),
    (
        re.compile(
            r"\bmy (?P<thing>[a-z]+(?: [a-z]+)?) is (?:called|named) (?P<value>[^.,!?]+)",
            re.IGNORECASE,
        ),
        None,
    ),
    (
        re.compile(r"\bmy (?P<thing>[a-z]+(?: [a-z]+)?)'s name is (?P<value>[^.,!?]+)", re.I),
        None,
    ),
)
_LIKES = re.compile(r"\bI (?:really )?(?:like|love|enjoy) (?P<value>[^.,!?]+)", re.IGNORECASE)


def _short(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def summary(context: str, user_turns: list[str]) -> str:
    """One deterministic sentence about what the user talked about."""
    _, user_name = mentor.names(context)
    who = user_name or "The user"
    quoted = [f"«{_short(turn, _TURN_MAX_CHARS)}»" for turn in user_turns[:_SUMMARY_TURNS]]
    if not quoted:
        return f"{who} said nothing."
    listed = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + f" and {quoted[-1]}"
    count = len(user_turns)
    return f"{who} talked about {listed} ({count} turn{'s' if count != 1 else ''})."


def next_steps(context: str, user_turns: list[str]) -> list[str]:
    """The user's commitments, else a step towards the first goal, else a generic step."""
    steps = [
        _short(match.group("step"), _STEP_MAX_CHARS)
        for turn in user_turns
        for match in _COMMITMENT.finditer(turn)
    ]
    if steps:
        return list(dict.fromkeys(steps))
    goals = mentor.topics(context)
    if goals:
        return [f"Take one small step towards «{goals[0][1]}»"]
    return ["Reflect on what came up in this session"]


def goal_updates(context: str, user_turns: list[str]) -> list[dict[str, Any]]:
    """``[{goal_id, progress_percentage}]`` the user stated, the last per goal."""
    goals = context_goals(context)
    latest: dict[str, Any] = {}
    for turn in user_turns:
        moved = progress(turn, goals)
        if moved is not None:
            latest[moved.arguments["goal_id"]] = moved.arguments["progress_percentage"]
    return [{"goal_id": goal_id, "progress_percentage": value} for goal_id, value in latest.items()]


def mood(user_turns: list[str]) -> str:
    """``positive``, ``negative``, ``mixed`` or ``neutral`` from the user's mood words."""
    words = [word for turn in user_turns for word in re.findall(r"[a-z]+", turn.lower())]
    good = sum(word in _POSITIVE for word in words)
    bad = sum(word in _NEGATIVE for word in words)
    if good and bad:
        return "mixed"
    if good:
        return "positive"
    if bad:
        return "negative"
    return "neutral"


def report(context: str, user_turns: list[str]) -> dict[str, Any]:
    """The four arguments of a session report."""
    return {
        "summary": summary(context, user_turns),
        "next_steps": next_steps(context, user_turns),
        "goal_updates": goal_updates(context, user_turns),
        "mood": mood(user_turns),
    }


def profile(user_turns: Iterable[str]) -> dict[str, Any]:
    """Facts about the user stated in their turns (oldest first; later statements win)."""
    facts: dict[str, Any] = {}
    likes: list[str] = []
    for turn in user_turns:
        for pattern, key in _FACTS:
            for match in pattern.finditer(turn):
                name = key or "_".join(match.group("thing").lower().split()) + "_name"
                facts[name] = _short(match.group("value"), _TURN_MAX_CHARS)
        likes.extend(_short(m.group("value"), _TURN_MAX_CHARS) for m in _LIKES.finditer(turn))
    if likes:
        facts["likes"] = list(dict.fromkeys(likes))
    return facts
