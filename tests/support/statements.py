"""`StatementCounter`: how tests count the statements a `Database` sends."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, event
from sqlalchemy.ext.asyncio import AsyncEngine

from facetoface.db.database import listen_statements, unlisten_statements
from facetoface.db.statements import PREFIX_START


class StatementCounter:
    """Counts statements a `Database` sends (both paths).

    `count` is the transactions' own work. The identity statement each transaction starts
    with (role, claims, timeout) is counted apart, in `identity_count`; `total` is both.
    Round trips on the wire are counted by a proxy instead (`tests/sessions/test_round_trips.py`):
    a one-trip message holds both kinds.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.count = 0
        self.identity_count = 0
        self.statements: list[str] = []
        self._engine = engine
        listen_statements(engine, self._record)
        event.listen(engine.sync_engine, "before_cursor_execute", self._on_execute)

    @property
    def total(self) -> int:
        return self.count + self.identity_count

    def _on_execute(self, conn: Connection, cursor: Any, statement: str, *args: Any) -> None:
        self._record(statement)

    def _record(self, statement: str) -> None:
        if statement.startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            return
        if statement.startswith(PREFIX_START):
            self.identity_count += 1
            return
        self.count += 1
        self.statements.append(statement)

    def reset(self) -> None:
        self.count = 0
        self.identity_count = 0
        self.statements.clear()

    def close(self) -> None:
        unlisten_statements(self._engine, self._record)
        event.remove(self._engine.sync_engine, "before_cursor_execute", self._on_execute)
