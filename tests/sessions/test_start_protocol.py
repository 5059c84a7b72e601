"""The start protocol's values are spelt once in Python (`sessions/start_protocol.py`,
`sessions/idempotency.py`) and as literals in `sessions/sql/start_session.sql`: the two must be
the same sets, or an answer of the function would be one the service does not understand."""

from __future__ import annotations

import re
from enum import StrEnum

from facetoface.migrations.functions import source
from facetoface.sessions.idempotency import KeyState
from facetoface.sessions.start_protocol import Refusal, StartOutcome

SQL = source("start_session")


def _assigned(target: str) -> set[str]:
    """Every literal in every expression assigned to `target` (up to its `;`)."""
    expressions = re.findall(rf"{re.escape(target)} := ([^;]*);", SQL)
    return {literal for expression in expressions for literal in re.findall(r"'(\w+)'", expression)}


def _values(enum: type[StrEnum]) -> set[str]:
    return {member.value for member in enum}


def test_outcomes_are_the_enums() -> None:
    assert _assigned("r.outcome") == _values(StartOutcome)


def test_key_states_are_the_enums() -> None:
    assert _assigned("r.key_state") == _values(KeyState)


def test_refusals_are_the_enums_in_order() -> None:
    block = SQL[SQL.index("r.refusal := CASE") : SQL.index("END;", SQL.index("r.refusal := CASE"))]
    assert re.findall(r"THEN '(\w+)'", block) == [refusal.value for refusal in Refusal]


def test_the_stored_key_states_are_key_states() -> None:
    stored = set(re.findall(r"state = '(\w+)'", SQL))
    assert stored
    assert stored <= _values(KeyState)
