"""No status or outcome is spelt as a string literal outside its enum (or the SQL files).

Every status set has one enum (`conversations/status.py`, `sessions/start_protocol.py`,
`sessions/idempotency.py`); code compares and writes the enum's members, and SQL text built in
Python takes its values from the enum too (`LIVE_STATUSES_SQL`, f-strings of members). This
walks every module of `src/` and reports a literal equal to one of those values where it is
used as one: compared with (`==`, `!=`, `in`), passed as `status=`/`state=`/…, stored under
such a key in a dict, or written into SQL text (`status = 'ended'`, `status IN (…)`).
The enums' own modules, migrations (frozen history) and `*.sql` files are exempt.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path

from facetoface.conversations.status import (
    CallbackOutcome,
    ConversationStatus,
    FailureCode,
    SessionStatus,
)
from facetoface.outbox.events import DeliveryStatus
from facetoface.sessions.idempotency import KeyAction, KeyState
from facetoface.sessions.start_protocol import Refusal, StartOutcome

SRC = Path(__file__).resolve().parents[1] / "src" / "facetoface"
ENUMS: tuple[type[StrEnum], ...] = (
    ConversationStatus,
    SessionStatus,
    CallbackOutcome,
    FailureCode,
    StartOutcome,
    Refusal,
    KeyState,
    KeyAction,
    DeliveryStatus,
)
#: Where the values are defined, and history that must not change.
EXEMPT = (
    "conversations/status.py",
    "sessions/start_protocol.py",
    "outbox/events.py",
    "migrations/",
)
#: Names whose values are statuses (keyword arguments, dict keys, SQL columns).
STATUS_NAMES = frozenset(
    {"status", "state", "outcome", "refusal", "key_state", "session_status", "failure_code"}
)
_SQL_STATUS = re.compile(
    r"\b(?:\w+\.)?(status|state|session_status|outcome|failure_code)\s*"
    r"(?:=|<>|!=)\s*'(\w+)'|\b(?:\w+\.)?(status|session_status)\s+(?:NOT\s+)?IN\s*\(([^)]*)\)",
    re.IGNORECASE,
)
#: Value sets of other tables that happen to share a word with ours.
OTHER_DOMAINS = {
    "user_goals.status": frozenset({"active", "completed", "paused", "archived"}),
}


def _values() -> dict[str, str]:
    found: dict[str, str] = {}
    for enum in ENUMS:
        for member in enum:
            found.setdefault(member.value, f"{enum.__name__}.{member.name}")
    return found


VALUES = _values()


def _modules() -> Iterator[Path]:
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).as_posix()
        if not relative.startswith(EXEMPT) and relative not in EXEMPT:
            yield path


def _constants(node: ast.AST) -> Iterator[ast.Constant]:
    """String constants of `node` itself, or of a tuple/list/set literal."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node
    elif isinstance(node, ast.Tuple | ast.List | ast.Set):
        for element in node.elts:
            yield from _constants(element)


def _offenders(tree: ast.AST) -> Iterator[tuple[int, str, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and _about_status(node):
            for operand in (node.left, *node.comparators):
                for constant in _constants(operand):
                    if constant.value in VALUES:
                        yield constant.lineno, constant.value, "compared"
        elif isinstance(node, ast.keyword) and node.arg in STATUS_NAMES:
            for constant in _constants(node.value):
                if constant.value in VALUES:
                    yield constant.lineno, constant.value, f"{node.arg}="
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value in STATUS_NAMES:
                    for constant in _constants(value):
                        if constant.value in VALUES:
                            yield constant.lineno, constant.value, f"{{{key.value!r}: …}}"
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            for match in _SQL_STATUS.finditer(node.value):
                column = match.group(1) or match.group(3)
                literals = (
                    [match.group(2)]
                    if match.group(2)
                    else re.findall(r"'(\w+)'", match.group(4) or "")
                )
                for literal in literals:
                    if literal in VALUES and not _other_domain(node.value, literal):
                        yield node.lineno, literal, f"SQL {column}"


def _about_status(compare: ast.Compare) -> bool:
    """The comparison involves a status (a name or attribute called like one): `reason in
    {"conflict", …}` compares words of another set."""
    names = {
        node.attr if isinstance(node, ast.Attribute) else node.id
        for operand in (compare.left, *compare.comparators)
        for node in ast.walk(operand)
        if isinstance(node, ast.Attribute | ast.Name)
    }
    return any(word in name.lower() for name in names for word in _STATUS_WORDS)


_STATUS_WORDS = ("status", "state", "outcome", "refusal", "failure_code")


def _other_domain(sql: str, literal: str) -> bool:
    return any(
        table.split(".")[0] in sql and literal in values for table, values in OTHER_DOMAINS.items()
    )


def test_no_status_literal_outside_the_enums() -> None:
    found = [
        f"{path.relative_to(SRC)}:{line}: {value!r} ({how}) — use {VALUES[value]}"
        for path in _modules()
        for line, value, how in _offenders(ast.parse(path.read_text(), str(path)))
    ]
    assert not found, "status literals outside their enums:\n" + "\n".join(found)


def test_the_check_sees_each_kind_of_use() -> None:
    """The checker itself: each way of spelling a status is reported."""
    code = """
if row.status == "ended": pass
x = f(status="failed")
d = {"outcome": "duplicate"}
SQL = "UPDATE t SET a = 1 WHERE status = 'active'"
LIVE = "SELECT 1 WHERE m.status IN ('starting', 'ending')"
"""
    kinds = {how for _, _, how in _offenders(ast.parse(code))}
    assert kinds == {"compared", "status=", "{'outcome': …}", "SQL status"}
