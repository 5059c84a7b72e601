"""Auth fixtures: keys (made once), a real JWKS server per test, a JWKS cache on a fake clock,
and a `TokenVerifier` configured the way production builds it for a Supabase project."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from facetoface.auth.jwks import JwksCache
from facetoface.auth.tokens import TokenVerifier
from tests.auth.jwtkit import (
    AUDIENCE,
    CACHE_SECONDS,
    COOLDOWN_SECONDS,
    HS256_SECRET,
    ISSUER,
    FakeClock,
    JwksServer,
    Keys,
    make_keys,
)


@pytest.fixture(scope="session")
def keys() -> Keys:
    return make_keys()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def _jwks_server_instance() -> Iterator[JwksServer]:
    server = JwksServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def jwks_server(_jwks_server_instance: JwksServer, keys: Keys) -> Iterator[JwksServer]:
    """The project's JWKS endpoint, publishing the current ES256 key and an RS256 key."""
    server = _jwks_server_instance
    server.reset()
    server.publish(keys.ec, keys.rsa)
    yield server
    if server.gate is not None:
        server.gate.set()
    server.reset()


@pytest.fixture(scope="session")
def _ssl_context() -> ssl.SSLContext:
    # Building httpx's default context loads the CA bundle (~50 ms); do it once.
    return ssl.create_default_context()


@pytest.fixture
async def http(_ssl_context: ssl.SSLContext) -> AsyncIterator[httpx.AsyncClient]:
    """The JWKS client as the app builds it (short timeout, redirects not followed)."""
    async with httpx.AsyncClient(
        timeout=2.0, follow_redirects=False, verify=_ssl_context
    ) as client:
        yield client


@pytest.fixture
def jwks(jwks_server: JwksServer, http: httpx.AsyncClient, clock: FakeClock) -> JwksCache:
    return JwksCache(
        jwks_server.url,
        client=http,
        cache_seconds=CACHE_SECONDS,
        cooldown_seconds=COOLDOWN_SECONDS,
        clock=clock,
    )


@pytest.fixture
def verifier(jwks: JwksCache) -> TokenVerifier:
    """Production shape with the legacy HS256 secret configured as well."""
    return TokenVerifier(
        issuer=ISSUER, audience=AUDIENCE, hs256_secret=HS256_SECRET, jwks=jwks, leeway_seconds=30
    )


@pytest.fixture
def verifier_no_secret(jwks: JwksCache) -> TokenVerifier:
    """Production shape for a project on asymmetric keys only (no HS256 secret)."""
    return TokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks=jwks, leeway_seconds=30)


@pytest.fixture(params=["with-hs256-secret", "without-hs256-secret"])
def any_verifier(
    request: pytest.FixtureRequest, verifier: TokenVerifier, verifier_no_secret: TokenVerifier
) -> TokenVerifier:
    return verifier if request.param == "with-hs256-secret" else verifier_no_secret
