"""Development commands: token · seed-demo · tavus-sim."""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated

import typer

from facetoface.cli.common import app, database, fail, read_settings
from facetoface.config import Settings
from facetoface.errors import FacetofaceError
from facetoface.observability.logging import configure_logging


@app.command()
def token(
    email: Annotated[str | None, typer.Option(help="Look the user up by profile email")] = None,
    user_id: Annotated[str | None, typer.Option("--user-id", help="The user's UUID")] = None,
    ttl: Annotated[int | None, typer.Option(help="Lifetime in seconds")] = None,
    operator: Annotated[
        bool,
        typer.Option(
            "--operator",
            help='Add app_metadata.facetoface_role="operator" (the /v1/ops API); alone: the '
            "development operator",
        ),
    ] = False,
) -> None:
    """Print a development access token (HS256, signed with the configured secret)."""
    from facetoface.auth.dev_issuer import DEV_OPERATOR_ID, mint_token

    settings = read_settings()
    # The output is the token, a failure its one line: log lines would only repeat it.
    configure_logging("ERROR", settings.effective_log_format)
    if settings.hs256_secret is None:
        raise fail(
            "tokens come from your Supabase project: no HS256 secret is configured "
            "(SUPABASE_JWT_SECRET; the development issuer's works with ENVIRONMENT=development "
            "only)"
        )
    if operator and email is None and user_id is None:
        print(mint_token(settings, user_id=DEV_OPERATOR_ID, ttl_seconds=ttl, operator=True))
        return
    if (email is None) == (user_id is None):
        raise fail("give exactly one of --email or --user-id (or --operator alone)")
    if user_id is not None:
        try:
            uid = uuid.UUID(user_id)
        except ValueError as exc:
            raise fail(f"--user-id {user_id!r} is not a UUID") from exc
    else:
        assert email is not None
        from sqlalchemy.exc import DBAPIError

        with database(settings, "owner") as resolved:
            try:
                found = asyncio.run(_user_id_for_email(resolved, email))
            except FacetofaceError as exc:  # e.g. 503 database_unavailable: say it in a line
                raise fail(f"cannot look up {email!r}: {exc.detail}") from None
            except DBAPIError as exc:
                # The least-privilege login role reads no table by itself (row-level security).
                raise fail(
                    f"cannot look up {email!r} as this DATABASE_URL's role "
                    f"({type(exc.orig).__name__}): use --user-id, or the tables' owner's "
                    "DATABASE_URL for this command"
                ) from None
        if found is None:
            raise fail(f"no profile with email {email!r} (try `facetoface seed-demo`)")
        uid = found
    print(mint_token(settings, user_id=uid, email=email, ttl_seconds=ttl, operator=operator))


async def _user_id_for_email(settings: Settings, email: str) -> uuid.UUID | None:
    from facetoface.db import Database
    from facetoface.demo import find_user_by_email

    db = Database(settings)
    try:
        async with db.transaction() as session:
            return await find_user_by_email(session, email)
    finally:
        await db.dispose()


@app.command("seed-demo")
def seed_demo() -> None:
    """Create demo users with complete profiles and a mentor (idempotent)."""
    from facetoface.db import Database
    from facetoface.demo import seed_demo_data

    settings = read_settings()

    async def run(settings: Settings) -> list[tuple[str, str]]:
        db = Database(settings)
        try:
            async with db.transaction() as session:
                return await seed_demo_data(session)
        finally:
            await db.dispose()

    with database(settings, "owner") as resolved:
        users = asyncio.run(run(resolved))
    print("Demo users (email → user id):")
    for email, uid in users:
        print(f"  {email:<28} {uid}")
    print("\nGet a token:   facetoface token --email", users[0][0])
    print(
        'Start:         curl -X POST -H "Authorization: Bearer $TOKEN" '
        f"{settings.public_base_url}/v1/sessions"
    )


@app.command("tavus-sim")
def tavus_sim(
    host: Annotated[str, typer.Option(help="Bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8100,
    api_key: Annotated[str, typer.Option(help="Accepted x-api-key")] = "sim-key",
    latency_ms: Annotated[int, typer.Option(help="Added latency per API call")] = 0,
    concurrency_limit: Annotated[int, typer.Option(help="Max active conversations")] = 10,
    reject_unknown_ids: Annotated[
        bool,
        typer.Option(
            "--reject-unknown-ids",
            help="Answer 400 to unknown persona/replica ids, like Tavus (default: adopt them)",
        ),
    ] = False,
) -> None:
    """Run the Tavus-compatible simulator on its own."""
    from tavus_sim import SimConfig, run_sim

    read_settings()  # only for the logging configuration
    run_sim(
        host,
        port,
        SimConfig(
            api_key=api_key,
            latency_ms=latency_ms,
            concurrency_limit=concurrency_limit,
            unknown_ids="reject" if reject_unknown_ids else "adopt",
        ),
    )
