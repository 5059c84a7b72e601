"""`Statement`: SQL text parsed once, rendered with psycopg's own literals; the identity
statement every transaction starts with."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Protocol


class _Literals(Protocol):
    """What `Statement.render` needs of psycopg's adapters."""

    def as_literal(self, obj: Any) -> bytes: ...


_PLACEHOLDER = re.compile(r"%\((\w+)\)s")

#: A statement's rows, each a dict of column name to value.
Rows = list[dict[str, Any]]


class Statement:
    """SQL text with `%(name)s` placeholders, split once, rendered with client-side literals.

    psycopg binds client-side too, but re-parses long statements on every call (it caches
    only short ones); the hot path's statements are long and run thousands of times, so they
    are parsed here once. Values become literals through psycopg's own adapters (quoting,
    escaping, the type casts), so rendering is as safe as psycopg's client-side binding.
    The text must contain no other `%`.
    """

    __slots__ = ("_chunks", "_names", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        pieces = _PLACEHOLDER.split(text)
        self._chunks = [piece.encode() for piece in pieces[0::2]]
        self._names = pieces[1::2]
        if any(b"%" in chunk for chunk in self._chunks):
            raise ValueError("a statement may contain no `%` but its placeholders")

    def render(self, params: Mapping[str, Any], adapt: _Literals) -> bytes:
        """The statement with each placeholder replaced by its value's SQL literal."""
        out = [self._chunks[0]]
        for name, chunk in zip(self._names, self._chunks[1:], strict=True):
            value = params[name]
            out.append(b"NULL" if value is None else adapt.as_literal(value))
            out.append(chunk)
        return b"".join(out)


#: The identity (role and claims) and the statement timeout, all transaction-local, in one
#: statement. `set_config('role', …, true)` is `SET LOCAL ROLE`; values are bound parameters.
#: Both claim settings are always written, so a service transaction never sees a stale caller.
IDENTITY_SQL = Statement(
    "SELECT set_config('role', %(_db_role)s, true), "
    "set_config('request.jwt.claims', %(_db_claims)s, true), "
    "set_config('request.jwt.claim.sub', %(_db_sub)s, true), "
    "set_config('statement_timeout', %(_db_timeout)s, true), "
    "set_config('timezone', 'UTC', true)"
)
#: Without row-level security only the statement timeout (and UTC for timestamps) is set.
TIMEOUT_SQL = Statement(
    "SELECT set_config('statement_timeout', %(_db_timeout)s, true), "
    "set_config('timezone', 'UTC', true)"
)
#: What every transaction's first statement starts with (how a statement counter tells it).
PREFIX_START = "SELECT set_config("
