"""The `facetoface` command: serve · migrate · doctor · token · seed-demo · reconcile ·
purge-user · tavus setup · tavus-sim.

Every command reads the settings from the environment (and `.env`); with `DATABASE_URL`
unset in development and tests, the embedded PostgreSQL is started for it
(`facetoface.db.embedded`).
"""

from __future__ import annotations

import sys

from facetoface.cli import database, development, serve, tavus
from facetoface.cli.common import app
from facetoface.cli.serve import server_config

__all__ = ["app", "main", "server_config"]

# The command modules register themselves on `app` when imported.
del database, development, serve, tavus


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
