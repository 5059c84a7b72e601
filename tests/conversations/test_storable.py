"""What PostgreSQL cannot store is normalised, never refused: U+0000 and lone surrogates."""

from __future__ import annotations

import json

import pytest

from facetoface.conversations.events import MalformedCallback, parse_body
from facetoface.conversations.storable import (
    MAX_DEPTH,
    REPLACEMENT,
    TooDeep,
    storable_json,
    storable_text,
)


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("plain", "plain"),
        ("naïve — ok", "naïve — ok"),
        ("a\x00b", f"a{REPLACEMENT}b"),
        ("x\ud800y", f"x{REPLACEMENT}y"),
        ("\udfff\x00", REPLACEMENT * 2),
        ("😀", "😀"),  # a real pair is one code point, kept
    ],
)
def test_text(raw: str, stored: str) -> None:
    assert storable_text(raw) == stored
    stored.encode("utf-8")  # always encodable


def test_clean_text_is_returned_as_is() -> None:
    text = "nothing to fix here, ünïcödé included"
    assert storable_text(text) is text


def test_json_keys_and_values_everywhere() -> None:
    value = json.loads('{"a\\u0000": ["x\\ud800", {"k": "\\u0000"}], "ok": 1}')
    cleaned, changed = storable_json(value)
    assert changed
    assert cleaned == {f"a{REPLACEMENT}": [f"x{REPLACEMENT}", {"k": REPLACEMENT}], "ok": 1}
    assert storable_json({"a": ["b"]}) == ({"a": ["b"]}, False)


def test_pathological_nesting_is_refused() -> None:
    deep: list[object] = []
    for _ in range(MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(TooDeep):
        storable_json(deep)
    very_deep: object = "x"
    for _ in range(100_000):  # far past Python's recursion limit: still just refused
        very_deep = {"k": very_deep}
    with pytest.raises(TooDeep):
        storable_json(very_deep)


def test_a_callback_with_a_nul_in_its_transcript_is_kept() -> None:
    body = (
        b'{"conversation_id": "c1", "event_type": "application.transcription_ready",'
        b' "properties": {"transcript": [{"role": "user", "content": "hi\\u0000 \\ud800"}]}}'
    )
    event = parse_body(body)
    assert event.normalized
    assert event.envelope.properties["transcript"][0]["content"] == f"hi{REPLACEMENT} {REPLACEMENT}"


@pytest.mark.parametrize(
    "timestamp",
    [1e300, -1e300, "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"],
)
def test_a_timestamp_out_of_range_stands_aside(timestamp: object) -> None:
    body = json.dumps(
        {"conversation_id": "c1", "event_type": "system.replica_joined", "timestamp": timestamp}
    ).encode()
    assert parse_body(body).envelope.timestamp is None  # the time of receipt stands in


@pytest.mark.parametrize(
    "body",
    [b"NaN", b'{"conversation_id": "c1", "event_type": "x", "properties": [1]}', b"[]"],
)
def test_what_is_no_event_is_still_refused(body: bytes) -> None:
    with pytest.raises(MalformedCallback):
        parse_body(body)
