"""May this code serve this database's schema? (rolling upgrades and rollbacks)

The expand/contract rule (README "Upgrading"): a migration is *backward-compatible* when the
previous release's code still runs correctly on the migrated schema — it only adds (tables,
nullable or defaulted columns, indexes, functions). Each migration file says so in a
module-level `backward_compatible = True|False`.

Code knows only the revisions up to its own head, so the markers of newer revisions must be
readable from the database: `facetoface migrate` writes every revision it knows into the
`schema_revisions` table (revision → the revision it follows, backward-compatible or not;
created by migration 0012, filled by `migrations/env.py` after each upgrade). Code whose head
is behind the database walks that table from the database's revision down to its own head:

- at its head: it serves;
- ahead by revisions all marked backward-compatible: it serves (a replica of the previous
  release during a rolling upgrade, or after a rollback);
- ahead by a revision marked incompatible, or one the table does not describe: it refuses,
  naming the revision;
- behind (a revision it knows, not its head), or empty: it refuses — run `facetoface migrate`.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping
from dataclasses import dataclass

#: The table `migrate` fills: one row per revision the migrating code knew.
MARKERS_TABLE = "schema_revisions"

#: What `migrate` and the readers use; the column names are the table's (migration 0012).
MARKERS_SQL = "SELECT revision, down_revision, backward_compatible FROM public.schema_revisions"
MARKERS_EXIST_SQL = "SELECT to_regclass('public.schema_revisions') IS NOT NULL"


class SchemaState(enum.StrEnum):
    """Where the database's schema stands relative to this code's head."""

    current = "ok"  # at this code's head
    ahead = "ahead"  # newer, every revision in between backward-compatible: serves
    behind = "behind"  # a revision this code knows, older than its head
    empty = "empty"  # no migration applied
    incompatible = "incompatible"  # newer, with a revision this code must not run on
    unknown = "unknown"  # newer, and the database does not describe the revisions between


#: The states in which this code serves the database.
SERVING = frozenset({SchemaState.current, SchemaState.ahead})


@dataclass(frozen=True, slots=True)
class Marker:
    """One row of `schema_revisions`."""

    down_revision: str | None
    backward_compatible: bool


@dataclass(frozen=True, slots=True)
class SchemaVerdict:
    """The database's revision, the code's head, and whether this code serves it (and why
    not, in one line)."""

    current: str | None
    head: str | None
    state: SchemaState
    message: str
    #: Newer revisions between the database and the code's head (`ahead` only), newest first.
    ahead_by: tuple[str, ...] = ()

    @property
    def serves(self) -> bool:
        """Whether this code may serve the database."""
        return self.state in SERVING


def judge(
    current: str | None,
    head: str | None,
    known: Collection[str],
    markers: Mapping[str, Marker],
) -> SchemaVerdict:
    """The verdict for a database at `current`, code at `head` knowing the revisions `known`,
    and the database's `markers` (empty when it has no `schema_revisions` table)."""
    if current == head:
        return SchemaVerdict(current, head, SchemaState.current, f"at this code's head ({head})")
    if current is None:
        return SchemaVerdict(
            current,
            head,
            SchemaState.empty,
            f"database schema is empty, this code needs {head}: run `facetoface migrate` first",
        )
    if current in known:
        return SchemaVerdict(
            current,
            head,
            SchemaState.behind,
            f"database schema is at {current}, behind this code's {head}: "
            "run `facetoface migrate` first",
        )
    path: list[str] = []
    revision: str | None = current
    while revision != head:
        if revision is None or revision in known or revision in path:
            # The chain left this code's line (another branch) or never reached its head.
            return SchemaVerdict(
                current,
                head,
                SchemaState.unknown,
                f"database schema is at {current}, which does not descend from this code's "
                f"{head}: deploy the code that matches the database",
            )
        marker = markers.get(revision)
        if marker is None:
            return SchemaVerdict(
                current,
                head,
                SchemaState.unknown,
                f"database schema is at {current}, a revision this code ({head}) does not know "
                f"and the database does not describe ({revision}): deploy code at {current} "
                "or newer",
            )
        if not marker.backward_compatible:
            return SchemaVerdict(
                current,
                head,
                SchemaState.incompatible,
                f"database schema is at {current}, ahead of this code's {head} by {revision}, "
                f"which is not backward-compatible: deploy code at {current} or newer",
            )
        path.append(revision)
        revision = marker.down_revision
    return SchemaVerdict(
        current,
        head,
        SchemaState.ahead,
        f"database schema is at {current}, ahead of this code's {head} by "
        f"backward-compatible revision(s) {', '.join(reversed(path))}",
        ahead_by=tuple(path),
    )
