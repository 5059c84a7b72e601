"""What the simulated mentor's "model" makes of the user's words: tool calls. Deterministic.

Three requests are understood (case-insensitive, anywhere in the utterance):

- progress: a percentage said as progress, with what it is about — "I'm at 60 % on
  meditating", "60 percent done with running", "I've been meditating most mornings, call it
  60 %" (not "I'm 100 % sure about running") →
  ``update_goal_progress {goal_id, progress_percentage}``. The goal is the context's goal
  (:func:`context_goals`) sharing the most words with the utterance (word stems: "meditating"
  matches "Meditate"); no shared word, no call. The number is passed on as said (the
  service bounds it).
- remember: "remember that my dog is called Rex" → ``remember {fact: "my dog is called Rex"}``.
- a new goal: "add a goal: run 5 km by June" → ``add_goal {goal_text: "run 5 km by June"}``.

Goals with ids come from the conversational context: any line naming ``goal_id`` (``goal_id:
<id>``, ``goal_id=<id>``, ``goal id <id>``), or else holding a «quoted» text and a UUID; the
goal's text is the line's first «quoted» text, else the line without its bullet and the id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_GOAL_ID = re.compile(
    r"goal[ _-]?id\b\s*[:=]?\s*[«\"'`\[(]?(?P<id>[A-Za-z0-9][A-Za-z0-9_-]{0,63})[»\"'`\])]?",
    re.IGNORECASE,
)
_QUOTED = re.compile(r"«([^»]+)»")
_UUID = re.compile(
    r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
)
_PERCENT = re.compile(r"(?P<n>\d{1,3}(?:[.,]\d+)?)\s*(?:%|per\s?cent\b)", re.IGNORECASE)
_SUBJECT_AFTER = re.compile(
    r"^\s*(?:done\s+|complete\s+|there\s+)?(?:on|with|for|of|in|towards?|through)\s+"
    r"(?P<subject>.+)$",
    re.IGNORECASE,
)
#: A percentage is progress only when said as such: "at 60 %", "call it 60 %", "60 % done",
#: "60 % on <goal>" — not "I'm 100 % sure".
_PROGRESS_BEFORE = re.compile(
    r"\b(?:at|about|around|roughly|nearly|almost|call\s+it|reached|hit|now)\s*$", re.IGNORECASE
)
_PROGRESS_AFTER = re.compile(
    r"^\s*(?:done|complete|completed|finished|there|of\s+the\s+way|on|with|for|towards?|"
    r"through)\b",
    re.IGNORECASE,
)
#: "remember …" as a request: at the start of a sentence or after "please", "can you", "and"…
#: — not "what do you remember about me?".
_REMEMBER = re.compile(
    r"(?:^|[.!?;:]\s+|\b(?:please|can\s+you|could\s+you|would\s+you|I\s+want\s+you\s+to|"
    r"and)\s+)(?:please\s+)?remember\s*[:,-]?\s+(?:that\s+)?(?P<fact>[^.!?]*[^\s.!?])",
    re.IGNORECASE,
)
_ADD_GOAL = re.compile(
    r"\badd\s+(?:a\s+|another\s+|one\s+more\s+|the\s+)?(?:new\s+)?goal\s*(?:[:\-–—]|to\b|of\b)?\s*"
    r"(?P<goal>[^\n]*[^\s.!?])",
    re.IGNORECASE,
)
#: Where an added goal's text ends when the same sentence also asks to remember something.
_THEN_REMEMBER = re.compile(r",?\s+(?:and\s+)?(?:please\s+)?remember\b", re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "at",
        "be",
        "been",
        "call",
        "done",
        "for",
        "i",
        "i'm",
        "im",
        "in",
        "is",
        "it",
        "its",
        "me",
        "mine",
        "my",
        "of",
        "on",
        "or",
        "so",
        "the",
        "to",
        "with",
        "am",
        "about",
        "almost",
        "around",
        "now",
        "i've",
        "ive",
        "most",
        "every",
        "each",
        "some",
    ]
)
_TOOL_TEXT_MAX = 500


@dataclass(frozen=True, slots=True)
class ContextGoal:
    """A goal the context names with its id."""

    goal_id: str
    text: str


@dataclass(frozen=True, slots=True)
class Intent:
    """A tool the user's words call for, with its arguments."""

    tool_name: str
    arguments: dict[str, Any]


def context_goals(context: str) -> list[ContextGoal]:
    """The goals listed in the context with their ``goal_id``, in order."""
    goals: list[ContextGoal] = []
    for line in context.splitlines():
        named = _GOAL_ID.search(line)
        quoted = _QUOTED.search(line)
        if named is not None:
            goal_id, start, end = named.group("id"), named.start(), named.end()
        else:
            uuid = _UUID.search(line)
            if uuid is None or quoted is None:
                continue
            goal_id, start, end = uuid.group(0), uuid.start(), uuid.end()
        if quoted is not None:
            text = quoted.group(1)
        else:
            text = (line[:start] + " " + line[end:]).strip(" -*•–\t()[],;:")
        goals.append(ContextGoal(goal_id=goal_id, text=" ".join(text.split())))
    return goals


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s", "e"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    if len(word) >= 4 and word[-1] == word[-2]:
        word = word[:-1]  # "runn" (running) → "run"
    return word


def _stems(text: str) -> set[str]:
    return {_stem(word) for word in _WORD.findall(text.lower()) if word not in _STOPWORDS}


def match_goal(subject: str, goals: list[ContextGoal]) -> ContextGoal | None:
    """The goal sharing the most word stems with ``subject`` (the first on a tie), if any."""
    wanted = _stems(subject)
    best: ContextGoal | None = None
    best_score = 0
    for goal in goals:
        score = len(wanted & _stems(goal.text))
        if score > best_score:
            best, best_score = goal, score
    return best


def _number(raw: str) -> int | float:
    value = float(raw.replace(",", "."))
    return int(value) if value.is_integer() else value


def progress(text: str, goals: list[ContextGoal]) -> Intent | None:
    """``update_goal_progress`` when the utterance gives a percentage for a known goal."""
    found = next(
        (
            match
            for match in _PERCENT.finditer(text)
            if _PROGRESS_BEFORE.search(text[: match.start()])
            or _PROGRESS_AFTER.match(text[match.end() :])
        ),
        None,
    )
    if found is None:
        return None
    after = _SUBJECT_AFTER.match(text[found.end() :])
    subject = after.group("subject") if after else text[: found.start()] + text[found.end() :]
    goal = match_goal(subject, goals)
    if goal is None:
        return None
    return Intent(
        "update_goal_progress",
        {"goal_id": goal.goal_id, "progress_percentage": _number(found.group("n"))},
    )


def _clause(text: str) -> str:
    return " ".join(text.split())[:_TOOL_TEXT_MAX]


def intents(text: str, context: str) -> list[Intent]:
    """The tool calls an utterance asks for, in a fixed order (add goal, progress, remember)."""
    found: list[Intent] = []
    add = _ADD_GOAL.search(text)
    if add is not None:
        goal_text = _THEN_REMEMBER.split(add.group("goal"), maxsplit=1)[0]
        found.append(Intent("add_goal", {"goal_text": _clause(goal_text)}))
    else:
        # "add a goal: run 5 km by June" must not also read as progress on a goal.
        moved = progress(text, context_goals(context))
        if moved is not None:
            found.append(moved)
    remember = _REMEMBER.search(text)
    if remember is not None:
        found.append(Intent("remember", {"fact": _clause(remember.group("fact"))}))
    return found
