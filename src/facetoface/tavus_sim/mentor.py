"""The simulated mentor: deterministic text that proves the context arrived. No LLM.

The greeting (or the first answer, when the create set a ``custom_greeting``) quotes the first
line of the ``conversational_context``; every answer names one of the goals or focus areas
found in the context, in rotation. The context is read leniently: ``Label: a; b`` or
``Label: a, b`` lines and ``Label:`` headings followed by ``- item`` bullets, where the label
mentions "goal" or "focus".
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
_FIRST_LINE_MAX_CHARS = 80


def _shorten(text: str, limit: int) -> str:
    """Collapse whitespace and cut ``text`` to ``limit`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def system_prompt(context: str) -> str:
    """Return the system prompt Tavus would show as the transcript's first entry."""
    return SYSTEM_PROMPT_TEMPLATE.format(context=context).rstrip()


def first_line(context: str) -> str | None:
    """Return the first non-blank line of the context, shortened, or ``None``."""
    for line in context.splitlines():
        if line.strip():
            return _shorten(line, _FIRST_LINE_MAX_CHARS)
    return None


def _kind_of(label: str) -> str | None:
    lowered = label.lower()
    if "goal" in lowered:
        return "goal"
    if "focus" in lowered:
        return "focus area"
    return None


def _split_items(value: str) -> list[str]:
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
    return found


def _context_note(context: str) -> str:
    line = first_line(context)
    return f"I have your context: {line}" if line else "I don't have any context about you yet."


def greeting(custom_greeting: str | None, context: str) -> str:
    """Return what the mentor says when the first participant joins.

    A ``custom_greeting`` is said verbatim, as Tavus does; the context note then comes with
    the first answer instead.
    """
    if custom_greeting:
        return custom_greeting
    return f"Hello, I'm glad you're here. {_context_note(context)}"


def reply(context: str, text: str, turn: int, *, mention_context: bool) -> str:
    """Return the mentor's answer to the participant's ``turn``-th utterance (0-based)."""
    said = _shorten(text, _TOPIC_MAX_CHARS)
    items = topics(context)
    if items:
        kind, item = items[turn % len(items)]
        answer = f'You said "{said}". Let\'s connect that to your {kind}: {item}.'
    elif (line := first_line(context)) is not None:
        answer = f'You said "{said}". Keeping in mind what you shared ({line}), tell me more.'
    else:
        answer = f'You said "{said}". Tell me more about that.'
    if mention_context:
        return f"{_context_note(context).rstrip('.')}. {answer}"
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
