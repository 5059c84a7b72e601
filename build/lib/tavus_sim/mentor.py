"""The simulated mentor: deterministic text that proves the context arrived. No LLM.

Like a real mentor it never reads out its instructions: it greets the person by name (the
names come from the context's opening line, "You are «Sage», meeting «Maria Silva» …", or a
``Name:`` line), and every answer brings up one of the goals or focus areas found in the
context, in rotation (goals first). The context is read leniently: ``Label: a; b`` or
``Label: a, b`` lines and ``Label:`` headings followed by ``- item`` bullets, where the label
mentions "goal" or "focus"; a bullet's «quoted» text is the item when there is one.
"""

from __future__ import annotations

import re

SYSTEM_PROMPT_TEMPLATE = (
    "You are a warm, attentive face-to-face mentor. Keep answers short and concrete, and "
    "use what you know about the person.\n\n{context}"
)

_LABEL_LINE = re.compile(r"^\s*([A-Za-z][A-Za-z0-9 /&()'_-]{0,60}?)\s*:\s*(.*)$")
_BULLET_PREFIX = ("-", "*", "•", "–")
_QUOTES = "\"'“”‘’«»"
_TOPIC_MAX_CHARS = 60
_NAME_MAX_CHARS = 60
_OPENING = re.compile(r"You are «([^»]{1,100})», meeting «([^»]{1,100})»")
_NAME_LINE = re.compile(r"^\s*-?\s*Name\s*:\s*«?([^»\n]{1,100}?)»?\s*$", re.MULTILINE)
_QUOTED = re.compile(r"«([^»]+)»")


def _shorten(text: str, limit: int) -> str:
    """Collapse whitespace and cut ``text`` to ``limit`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def system_prompt(context: str) -> str:
    """Return the system prompt Tavus would show as the transcript's first entry."""
    return SYSTEM_PROMPT_TEMPLATE.format(context=context).rstrip()


def _kind_of(label: str) -> str | None:
    lowered = label.lower()
    if "goal" in lowered:
        return "goal"
    if "focus" in lowered:
        return "focus area"
    return None


def names(context: str) -> tuple[str | None, str | None]:
    """Return ``(mentor name, user name)`` as the context gives them (either may be None)."""
    opening = _OPENING.search(context)
    if opening is not None:
        mentor_name, user_name = opening.group(1), opening.group(2)
        return _shorten(mentor_name, _NAME_MAX_CHARS), _shorten(user_name, _NAME_MAX_CHARS)
    line = _NAME_LINE.search(context)
    return None, _shorten(line.group(1), _NAME_MAX_CHARS) if line is not None else None


def _split_items(value: str) -> list[str]:
    quoted = _QUOTED.search(value)
    if quoted is not None:
        # «The user's own words» (any details after it are about the item, not items).
        return [_shorten(quoted.group(1), _TOPIC_MAX_CHARS)]
    # Goals often contain commas, so a semicolon list wins when there is one.
    separator = ";" if ";" in value else ","
    items = [item.strip().strip(_QUOTES).strip() for item in value.split(separator)]
    return [_shorten(item, _TOPIC_MAX_CHARS) for item in items if item]


def topics(context: str) -> list[tuple[str, str]]:
    """Return ``(kind, item)`` pairs for the goals and focus areas named in the context."""
    found: list[tuple[str, str]] = []
    section: str | None = None
    for line in context.splitlines():
        stripped = line.strip()
        if not stripped:
            section = None
            continue
        if stripped.startswith(_BULLET_PREFIX):
            if section is not None:
                found.extend((section, item) for item in _split_items(stripped[1:]))
            continue
        match = _LABEL_LINE.match(line)
        if match is None:
            section = None
            continue
        section = _kind_of(match.group(1))
        if section is not None and match.group(2).strip():
            found.extend((section, item) for item in _split_items(match.group(2)))
    # Goals first: they are what the person is working on.
    return [t for t in found if t[0] == "goal"] + [t for t in found if t[0] != "goal"]


def greeting(custom_greeting: str | None, context: str) -> str:
    """Return what the mentor says when the first participant joins.

    A ``custom_greeting`` is said verbatim, as Tavus does; the mentor then greets the person
    by name in its first answer instead.
    """
    if custom_greeting:
        return custom_greeting
    mentor_name, user_name = names(context)
    hello = f"Hello {user_name}" if user_name else "Hello"
    me = f", I'm {mentor_name}" if mentor_name else ", I'm your mentor"
    if not topics(context) and user_name is None:
        return f"{hello}{me}. I don't know much about you yet: tell me a little about yourself."
    return f"{hello}{me}. It's good to see you. What's on your mind today?"


def reply(context: str, text: str, turn: int, *, mention_context: bool) -> str:
    """Return the mentor's answer to the participant's ``turn``-th utterance (0-based).

    ``mention_context``: this is the first answer after a custom greeting, so it greets the
    person by name first.
    """
    items = topics(context)
    if items:
        kind, item = items[turn % len(items)]
        answer = (
            f"Thank you for sharing that. Let's connect it to your {kind} «{item}»: "
            "what is one small step you could take today?"
        )
    else:
        answer = "Thank you for sharing that. Tell me more about it."
    _, user_name = names(context)
    if mention_context and user_name:
        return f"It's good to see you, {user_name}. {answer}"
    return answer


def perception_analysis(user_turns: int, ever_joined: bool) -> str:
    """Return a short visual-analysis summary like Raven's post-call text."""
    if not ever_joined:
        return "No participant appeared on camera during the call."
    return (
        f"The participant was on camera, appeared attentive and calm, and spoke {user_turns} "
        f"time{'s' if user_turns != 1 else ''}. No other people were visible."
    )


def with_recall(answer: str, recall: str | None) -> str:
    """Prefix an answer with what the mentor remembers from earlier conversations (memory.py)."""
    return f"{recall} {answer}" if recall else answer
