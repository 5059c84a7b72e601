"""Where SQL spells the outbox's values (the session events' trigger, migration 0014's CHECKs),
they are the enums' (`outbox/events.py`); and the trigger builds exactly the documented
payload fields."""

from __future__ import annotations

import re
from pathlib import Path

from facetoface.migrations.functions import source
from facetoface.outbox import PAYLOAD_FIELDS, DeliveryStatus, EventType

TRIGGER = source("enqueue_session_events")
VERSIONS = Path(__file__).resolve().parents[2] / "src/facetoface/migrations/versions"
#: The migration's text with its implicitly concatenated string literals joined.
MIGRATION = re.sub(r'"\n\s*"', "", (VERSIONS / "2026-12-07_0014_webhook_outbox.py").read_text())


def test_the_trigger_writes_enum_values() -> None:
    types = set(re.findall(r"'(session\.\w+)'", TRIGGER))
    assert types == {EventType.session_started.value, EventType.session_ended.value}
    assert "'pending'" in TRIGGER
    assert DeliveryStatus.pending.value == "pending"


def test_the_migration_checks_the_enum_sets() -> None:
    check_types = re.search(r'"event_type IN \((.*?)\)"', MIGRATION)
    assert check_types is not None
    assert set(re.findall(r"'([\w.]+)'", check_types.group(1))) == {t.value for t in EventType}
    check_status = re.search(r'"status IN \((.*?)\)"', MIGRATION)
    assert check_status is not None
    assert set(re.findall(r"'(\w+)'", check_status.group(1))) == {s.value for s in DeliveryStatus}


def test_the_trigger_builds_the_documented_payloads() -> None:
    keys = set(re.findall(r"'(\w+)', (?:NEW|v_data)", TRIGGER))
    started = PAYLOAD_FIELDS[EventType.session_started]
    ended = PAYLOAD_FIELDS[EventType.session_ended]
    assert started <= keys
    assert keys == ended
