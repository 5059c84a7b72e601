"""Checks of the configuration itself: settings, token signing keys, the public base URL."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

import httpx
from pydantic import ValidationError

from facetoface.auth.jwks import parse_jwks
from facetoface.config import (
    DEV_JWT_SECRET,
    ConfigurationError,
    Environment,
    Settings,
    describe_settings_error,
    unreachable_host_reason,
)
from facetoface.doctor.report import Check, CheckResult

SETTINGS = Check("settings", "settings")
SIGNING_KEYS = Check("signing_keys", "signing keys")
PUBLIC_BASE_URL = Check("public_base_url", "public base URL")

_CONFIG_FIX = "set the variables named above (README: Configuration)"


def check_settings(load: Callable[[], Settings]) -> tuple[Settings | None, CheckResult]:
    """Read the settings and check them for their environment (`serve`'s own refusal rules).

    Messages name variables and rules, never values: a value may be a secret.
    """
    try:
        settings = load()
        if settings.database_url:
            settings.sqlalchemy_url  # noqa: B018 - parses DATABASE_URL, raising on a bad one
    except ValidationError as exc:
        problems = describe_settings_error(exc, show_values=False)
        return None, SETTINGS.failed(f"unreadable: {problems}", _CONFIG_FIX)
    except ConfigurationError as exc:
        return None, SETTINGS.failed(str(exc), _CONFIG_FIX)
    try:
        settings.check_production_ready()
    except ConfigurationError as exc:
        return settings, SETTINGS.failed(str(exc), _CONFIG_FIX)
    return settings, SETTINGS.passed(f"valid for {settings.environment.value}")


async def check_signing_keys(settings: Settings) -> CheckResult:
    """Access tokens can be verified: the JWKS publishes keys, or an HS256 secret is set."""
    secret = settings.hs256_secret
    if secret is None:
        secret_note = ""
    elif secret == DEV_JWT_SECRET:
        secret_note = "the development issuer's HS256 secret (development only)"
    else:
        secret_note = "HS256 secret set (SUPABASE_JWT_SECRET)"
    url = settings.jwks_url
    if url is None:
        if secret_note:
            return SIGNING_KEYS.passed(secret_note)
        return SIGNING_KEYS.failed(
            "no way to verify access tokens: neither SUPABASE_URL nor SUPABASE_JWT_SECRET is set",
            "set SUPABASE_URL (projects signing with asymmetric keys) or SUPABASE_JWT_SECRET "
            "(projects still on the legacy HS256 secret)",
        )
    problem = None
    count = 0
    try:
        async with httpx.AsyncClient(
            timeout=settings.jwks_fetch_timeout_seconds, follow_redirects=False
        ) as http:
            response = await http.get(url)
        response.raise_for_status()
        count = len(parse_jwks(response.json()))
    except httpx.HTTPStatusError as exc:
        problem = f"JWKS at {url} answered HTTP {exc.response.status_code}"
    except httpx.HTTPError as exc:
        problem = f"cannot fetch the JWKS at {url} ({type(exc).__name__})"
    except ValueError:
        problem = f"{url} is not a JWK set"
    if problem is None and count == 0:
        problem = f"JWKS at {url} has no usable signing key (ES256/RS256)"
    if problem is None:
        detail = f"JWKS at {url} has {count} signing key{'s' if count != 1 else ''}"
        return SIGNING_KEYS.passed(f"{detail}; {secret_note}" if secret_note else detail)
    if secret_note:
        # Tokens still verify with the HS256 secret (a project on legacy signing).
        return SIGNING_KEYS.passed(f"{secret_note}; {problem}")
    return SIGNING_KEYS.failed(
        problem,
        "check SUPABASE_URL (the JWKS is <SUPABASE_URL>/auth/v1/.well-known/jwks.json) and that "
        "the project publishes asymmetric signing keys; a project on the legacy HS256 secret "
        "sets SUPABASE_JWT_SECRET",
    )


def check_public_base_url(settings: Settings) -> CheckResult:
    """The address Tavus posts callbacks to: HTTPS and publicly reachable in production."""
    url = settings.public_base_url
    fix = (
        "set PUBLIC_BASE_URL to this service's public HTTPS address (Tavus posts its callbacks "
        "there), e.g. https://api.example.com"
    )
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        parts, host = None, ""
    if parts is None or parts.scheme not in ("http", "https") or not host:
        return PUBLIC_BASE_URL.failed(f"{url!r} is not an absolute http(s) URL", fix)
    local = unreachable_host_reason(host)
    if settings.environment is Environment.production:
        if parts.scheme != "https":
            return PUBLIC_BASE_URL.failed(f"{url} is not HTTPS", fix)
        if local is not None:
            return PUBLIC_BASE_URL.failed(f"{url} is {local}: Tavus cannot reach it", fix)
        return PUBLIC_BASE_URL.passed(f"{url}")
    if parts.scheme != "https" or local is not None:
        return PUBLIC_BASE_URL.passed(
            f"{url} (HTTP and local addresses are fine outside production)",
        )
    return PUBLIC_BASE_URL.passed(url)
