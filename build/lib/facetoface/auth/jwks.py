"""A JWKS cache that never blocks the event loop and cannot be used to amplify traffic.

- Keys are fetched with an async HTTP client and kept for `cache_seconds`.
- A token with an unknown `kid` triggers at most one refetch per `cooldown_seconds`, however
  many such tokens arrive (a flood of random `kid`s costs one fetch, not one each).
- Concurrent refreshes are collapsed into one (single flight).
- A failed fetch keeps the keys we already have; only when we have none does verification
  fail with `JwksUnavailable` (a 503: the caller's token may be fine).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import jwt
import structlog

log = structlog.get_logger(__name__)

ALLOWED_ALGORITHMS = frozenset({"ES256", "RS256"})


class JwksUnavailable(Exception):
    """No signing keys could be obtained from the JWKS endpoint."""


class UnknownSigningKey(Exception):
    """The token's `kid` is not among the issuer's current keys."""


class JwksCache:
    """Signing keys of one issuer, by `kid`."""

    def __init__(
        self,
        url: str,
        *,
        client: httpx.AsyncClient,
        cache_seconds: float = 300,
        cooldown_seconds: float = 30,
        clock: Any = time.monotonic,
    ) -> None:
        self.url = url
        self._client = client
        self._cache_seconds = cache_seconds
        self._cooldown_seconds = cooldown_seconds
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._last_attempt: float | None = None
        self._lock = asyncio.Lock()
        #: Completed fetch attempts (success or failure); lets lock waiters reuse a result.
        self._attempts_done = 0
        self.fetch_count = 0

    async def get_key(self, kid: str) -> jwt.PyJWK:
        """The key for `kid`, refreshing the set when stale or (rate-limited) when unknown."""
        if self._is_stale():
            await self._refresh()
        key = self._keys.get(kid)
        if key is None:
            await self._refresh()
            key = self._keys.get(kid)
        if key is None:
            if not self._keys and self._fetched_at is None:
                raise JwksUnavailable(self.url)
            raise UnknownSigningKey(kid)
        return key

    def _is_stale(self) -> bool:
        return self._fetched_at is None or (self._clock() - self._fetched_at > self._cache_seconds)

    async def _refresh(self) -> None:
        attempts_seen = self._attempts_done
        async with self._lock:
            # A fetch finished while we waited for the lock: use its result (even when it took
            # longer than the cooldown, e.g. a hanging endpoint, no second fetch follows).
            if self._attempts_done != attempts_seen:
                return
            # The cooldown holds even with no keys at all: an unreachable JWKS endpoint must
            # not be hit once per incoming request.
            if (
                self._last_attempt is not None
                and self._clock() - self._last_attempt < self._cooldown_seconds
            ):
                return
            self._last_attempt = self._clock()
            self.fetch_count += 1
            try:
                response = await self._client.get(self.url)
                response.raise_for_status()
                keys = parse_jwks(response.json())
            except (httpx.HTTPError, ValueError, jwt.PyJWKSetError) as exc:
                log.warning("auth.jwks_fetch_failed", url=self.url, error_type=type(exc).__name__)
                return
            else:
                self._keys = keys
                self._fetched_at = self._clock()
                log.info("auth.jwks_fetched", url=self.url, keys=len(keys))
            finally:
                self._attempts_done += 1
                # The cooldown runs from the end of the attempt: a fetch that outlasts it (a
                # hanging endpoint) must not be followed straight away by another.
                self._last_attempt = self._clock()


def parse_jwks(document: Any) -> dict[str, jwt.PyJWK]:
    """The usable signing keys of a JWK set by `kid` (ES256/RS256 signature keys only);
    `ValueError` when the document is not a JWK set."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWK set")
    keys: dict[str, jwt.PyJWK] = {}
    for data in document["keys"]:
        if not isinstance(data, dict) or not data.get("kid"):
            continue
        alg = data.get("alg")
        if data.get("use", "sig") != "sig" or not isinstance(alg, str):
            continue
        if alg not in ALLOWED_ALGORITHMS:
            continue
        try:
            keys[str(data["kid"])] = jwt.PyJWK(data)
        except jwt.PyJWTError:  # PyJWKError, and InvalidKeyError for malformed key material
            log.warning("auth.jwks_key_skipped", kid=str(data.get("kid")))
    return keys
