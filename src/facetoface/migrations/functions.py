"""The PL/pgSQL functions, as source files, and as each migration installed them.

Each function's current definition is one file beside the code that calls it
(`SOURCES`: `sessions/sql/start_session.sql`, `conversations/sql/apply_delta.sql`, ...): that
is where a reader following a start or a callback finds the code that decides.

Migrations must stay reproducible — an old revision installs exactly what it did when it was
written — so a migration never reads a source file. When a revision installs a function it
installs a frozen copy: `migrations/sql/<revision>/<name>.sql`, made from the source file by
`python -m facetoface.migrations.functions <revision> <name>...` when the migration is
written, and never edited after. The newest frozen copy of each function equals its source
file, and a migrated database's definitions equal the source files
(tests/test_sql_functions.py), so the source file is always what production runs.
"""

from __future__ import annotations

import sys
from importlib.resources import files
from pathlib import Path

#: Each function's source file, by name.
SOURCES: dict[str, str] = {
    "apply_delta": "conversations/sql/apply_delta.sql",
    "session_json": "conversations/sql/session_json.sql",
    "forget_meeting_token": "conversations/sql/forget_meeting_token.sql",
    "remember_deleted_conversation": "conversations/sql/remember_deleted_conversation.sql",
    "start_session": "sessions/sql/start_session.sql",
    "claim_end": "sessions/sql/claim_end.sql",
    "enqueue_session_events": "outbox/sql/enqueue_session_events.sql",
}
_PACKAGE = files("facetoface")
_FROZEN = _PACKAGE / "migrations" / "sql"


def frozen(revision: str, name: str) -> str:
    """The SQL of function `name` as revision `revision` installs it."""
    return (_FROZEN / revision / f"{name}.sql").read_text("utf-8")


def source(name: str) -> str:
    """The current SQL of function `name` (its source file)."""
    return (_PACKAGE / SOURCES[name]).read_text("utf-8")


def frozen_revisions(name: str) -> list[str]:
    """The revisions that install function `name`, oldest first."""
    return sorted(entry.name for entry in _FROZEN.iterdir() if (entry / f"{name}.sql").is_file())


def freeze(revision: str, names: list[str]) -> list[Path]:
    """Copy the source files of `names` as revision `revision`'s frozen copies."""
    directory = Path(str(_FROZEN)) / revision
    directory.mkdir(exist_ok=True)
    written = []
    for name in names:
        target = directory / f"{name}.sql"
        target.write_text(source(name), "utf-8")
        written.append(target)
    return written


if __name__ == "__main__":
    if len(sys.argv) < 3 or any(name not in SOURCES for name in sys.argv[2:]):
        sys.exit(
            f"usage: python -m facetoface.migrations.functions <revision> {'|'.join(SOURCES)}..."
        )
    for path in freeze(sys.argv[1], sys.argv[2:]):
        print(f"froze {path}")  # noqa: T201
