"""Text PostgreSQL can store (conversations/storable.py; issue 10 §4): U+0000 and lone
surrogates become U+FFFD, everything else is kept, and nothing is refused whole."""

from __future__ import annotations

import json
from typing import Any

import pytest

from facetoface.conversations.events import parse_body
from facetoface.conversations.storable import (
    MAX_DEPTH,
    REPLACEMENT,
    TooDeep,
    storable_json,
    storable_text,
)


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("plain ascii", "plain ascii"),
        ("accents é, 漢字 and 🙂 stay", "accents é, 漢字 and 🙂 stay"),
        ("nul\x00here", f"nul{REPLACEMENT}here"),
        ("lone \ud800 high", f"lone {REPLACEMENT} high"),
        ("lone \udfff low", f"lone {REPLACEMENT} low"),
        ("\udbff\x00\ud800", REPLACEMENT * 3),
        ("", ""),
    ],
)
def test_only_the_unstorable_code_points_are_replaced(text: str, stored: str) -> None:
    assert storable_text(text) == stored
    storable_text(stored).encode("utf-8")  # what PostgreSQL gets is valid UTF-8


def test_clean_text_is_returned_as_is() -> None:
    text = "nothing to fix here, ünïcödé included"
    assert storable_text(text) is text


def test_json_is_cleaned_everywhere_keys_included() -> None:
    value: Any = {
        "k\x00ey": ["a\ud800", {"n": 1, "nested\udfff": "b\x00"}],
        "fine": [True, None, 1.5, "ok"],
    }
    cleaned, changed = storable_json(value)
    assert changed
    assert cleaned == {
        f"k{REPLACEMENT}ey": [
            f"a{REPLACEMENT}",
            {"n": 1, f"nested{REPLACEMENT}": f"b{REPLACEMENT}"},
        ],
        "fine": [True, None, 1.5, "ok"],
    }
    json.dumps(cleaned, ensure_ascii=False).encode("utf-8")


def test_clean_json_reports_no_change() -> None:
    value = {"a": ["b", {"c": 1}]}
    cleaned, changed = storable_json(value)
    assert (cleaned, changed) == ({"a": ["b", {"c": 1}]}, False)


def test_pathological_nesting_is_refused_without_recursion() -> None:
    deep: Any = "x"
    for _ in range(MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(TooDeep):
        storable_json(deep)
    very_deep: Any = "x"
    for _ in range(100_000):  # far past Python's recursion limit: still just refused
        very_deep = {"k": very_deep}
    with pytest.raises(TooDeep):
        storable_json(very_deep)


def test_a_callback_body_with_escapes_parses_into_storable_text() -> None:
    body = (
        b'{"conversation_id": "c1", "event_type": "application.transcription_ready", '
        b'"properties": {"transcript": [{"role": "user", "content": "a\\u0000b\\ud800c"}]}}'
    )
    event = parse_body(body)
    [turn] = event.envelope.properties["transcript"]
    assert turn["content"] == f"a{REPLACEMENT}b{REPLACEMENT}c"
    assert event.normalized
