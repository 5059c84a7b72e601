"""What every command shares: the Typer app, reading settings, failing in one line."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import structlog
import typer

from facetoface.config import ConfigurationError, Settings, get_settings
from facetoface.db.embedded import Login, database_settings
from facetoface.observability.logging import configure_logging

app = typer.Typer(
    name="facetoface",
    help="Backend for AI video mentor sessions on Tavus CVI.",
    no_args_is_help=True,
    add_completion=False,
)
log = structlog.get_logger("facetoface.cli")


def read_settings() -> Settings:
    """The environment's settings, logging configured; exit 2 with one line when unreadable."""
    try:
        settings = get_settings()
    except ConfigurationError as exc:  # one line naming the variable, with an example
        raise fail(f"configuration error: {exc}") from None
    configure_logging(settings.log_level, settings.effective_log_format)
    return settings


def fail(message: str) -> typer.Exit:
    """Print `message` as the command's one line of error; exit status 2."""
    typer.echo(f"facetoface: {message}", err=True)
    return typer.Exit(2)


@contextlib.contextmanager
def database(settings: Settings, login: Login) -> Iterator[Settings]:
    """`settings` with its database resolved (the embedded one when `DATABASE_URL` is unset),
    for the duration of a command; a configuration problem is the command's one line."""
    try:
        with database_settings(settings, login) as resolved:
            yield resolved
    except ConfigurationError as exc:
        raise fail(str(exc)) from exc
