"""The JWKS cache against a real HTTP endpoint: fetch counting under floods, outages, key
rotation and concurrency. The cache runs on a fake clock, so nothing here sleeps."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest

from facetoface.auth.jwks import JwksCache, JwksUnavailable, UnknownSigningKey
from facetoface.auth.tokens import AuthUnavailable, TokenVerifier
from facetoface.errors import Unauthorized
from tests.auth.jwtkit import (
    CACHE_SECONDS,
    COOLDOWN_SECONDS,
    HS256_SECRET,
    ISSUER,
    FakeClock,
    JwksServer,
    Keys,
    b64url,
    forge,
    user_claims,
)
from tests.support.eventually import eventually


async def _rejected(verifier: TokenVerifier, token: str) -> None:
    with pytest.raises(Unauthorized) as excinfo:
        await verifier.verify(token)
    assert type(excinfo.value) is Unauthorized


async def _unavailable(verifier: TokenVerifier, token: str) -> AuthUnavailable:
    with pytest.raises(AuthUnavailable) as excinfo:
        await verifier.verify(token)
    assert excinfo.value.status_code == 503
    return excinfo.value


# --- unknown-kid floods ----------------------------------------------------------------------
async def test_unknown_kid_flood_costs_at_most_one_fetch_per_cooldown(
    verifier: TokenVerifier, keys: Keys, jwks_server: JwksServer, clock: FakeClock
) -> None:
    def random_kid_token() -> str:
        return keys.attacker_ec.sign(user_claims(), kid=uuid.uuid4().hex)

    # Cold cache, 50 concurrent tokens with random kids: one fetch.
    results = await asyncio.gather(
        *(verifier.verify(random_kid_token()) for _ in range(50)), return_exceptions=True
    )
    assert all(type(r) is Unauthorized for r in results), results
    assert jwks_server.fetches == 1

    # Warm cache, within the cooldown: no fetch at all.
    clock.advance(COOLDOWN_SECONDS - 1)
    for _ in range(50):
        await _rejected(verifier, random_kid_token())
    assert jwks_server.fetches == 1

    # Once the cooldown has passed: one more fetch for the next 50.
    clock.advance(2)
    for _ in range(50):
        await _rejected(verifier, random_kid_token())
    assert jwks_server.fetches == 2

    # Legitimate tokens are unaffected throughout.
    await verifier.verify(keys.ec.sign(user_claims()))
    assert jwks_server.fetches == 2


async def test_tokens_that_cannot_be_ours_never_cause_a_fetch(
    verifier: TokenVerifier, keys: Keys, jwks_server: JwksServer
) -> None:
    """`alg: none`, HMAC and unsupported algorithms are refused before the JWKS is consulted."""
    tokens = [
        forge({"alg": "none", "kid": "x"}, user_claims()),
        jwt.encode(user_claims(), "x" * 64, algorithm="HS256", headers={"kid": "x"}),
        keys.attacker_p384.sign(user_claims(), kid="random"),
        keys.ec.sign(user_claims(), omit_kid=True),
    ]
    for token in tokens:
        await _rejected(verifier, token)
    assert jwks_server.fetches == 0


# --- endpoint outages --------------------------------------------------------------------------
@pytest.mark.parametrize("failure", ["http-500", "http-503", "redirect", "not-json", "no-keys"])
async def test_cached_keys_survive_an_endpoint_outage(
    verifier: TokenVerifier,
    jwks: JwksCache,
    keys: Keys,
    jwks_server: JwksServer,
    clock: FakeClock,
    failure: str,
) -> None:
    token = keys.ec.sign(user_claims())
    await verifier.verify(token)
    assert jwks_server.fetches == 1

    if failure == "not-json":
        jwks_server.raw_body = b"<html>maintenance</html>"
    elif failure == "no-keys":
        jwks_server.raw_body = b'{"error": "oops"}'
    else:
        jwks_server.status = {"http-500": 500, "http-503": 503, "redirect": 302}[failure]

    # Within the cache lifetime: no fetch, keys keep working.
    clock.advance(CACHE_SECONDS - 1)
    await verifier.verify(token)
    assert jwks_server.fetches == 1

    # Cache expired: one refresh attempt fails; the stale keys are still used.
    clock.advance(2)
    await verifier.verify(token)
    await verifier.verify(keys.rsa.sign(user_claims()))
    assert jwks_server.fetches == 2

    # Stale and still failing: at most one attempt per cooldown, however many requests.
    for _ in range(20):
        await verifier.verify(token)
    assert jwks_server.fetches == 2
    clock.advance(COOLDOWN_SECONDS + 1)
    for _ in range(20):
        await verifier.verify(token)
    assert jwks_server.fetches == 3

    # A kid we never saw, during the outage: 401 (we do have keys), not 503.
    clock.advance(COOLDOWN_SECONDS + 1)
    await _rejected(verifier, keys.ec_next.sign(user_claims()))
    assert jwks_server.fetches == 4

    # The endpoint recovers: the next refresh (after the cooldown) replaces the stale set.
    jwks_server.reset()
    jwks_server.publish(keys.ec, keys.rsa)
    clock.advance(COOLDOWN_SECONDS + 1)
    await verifier.verify(token)
    assert jwks_server.fetches == 1
    await verifier.verify(token)
    assert jwks_server.fetches == 1  # fresh again


async def test_cached_keys_survive_the_endpoint_going_away(
    keys: Keys, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    server = JwksServer()
    server.publish(keys.ec)
    server.start()
    try:
        cache = JwksCache(
            server.url, client=http, cache_seconds=60, cooldown_seconds=5, clock=clock
        )
        verifier = TokenVerifier(issuer=ISSUER, jwks=cache)
        token = keys.ec.sign(user_claims())
        await verifier.verify(token)
    finally:
        server.stop()  # connection refused from now on

    clock.advance(3600)
    await verifier.verify(token)
    assert cache.fetch_count == 2  # one failed attempt (connection refused), keys kept
    await verifier.verify(token)
    assert cache.fetch_count == 2


@pytest.mark.parametrize("failure", ["http-500", "not-json", "no-keys", "connection-refused"])
async def test_no_keys_and_endpoint_down_is_503_and_respects_the_cooldown(
    keys: Keys,
    jwks_server: JwksServer,
    http: httpx.AsyncClient,
    clock: FakeClock,
    failure: str,
) -> None:
    url = jwks_server.url
    if failure == "connection-refused":
        server = JwksServer()
        server.start()
        url = server.url
        server.stop()
    elif failure == "not-json":
        jwks_server.raw_body = b"not json"
    elif failure == "no-keys":
        jwks_server.raw_body = b'{"keys": "none"}'
    else:
        jwks_server.status = 500
    cache = JwksCache(
        url, client=http, cache_seconds=CACHE_SECONDS, cooldown_seconds=30, clock=clock
    )
    verifier = TokenVerifier(issuer=ISSUER, hs256_secret=HS256_SECRET, jwks=cache)
    token = keys.ec.sign(user_claims())

    error = await _unavailable(verifier, token)
    assert error.code == "auth_unavailable"
    assert error.headers["Retry-After"].isdigit()
    assert cache.fetch_count == 1

    # Repeated attempts within the cooldown: still 503, no refetch.
    for _ in range(20):
        await _unavailable(verifier, token)
        await _unavailable(verifier, keys.ec.sign(user_claims(), kid=uuid.uuid4().hex))
    clock.advance(29)
    await _unavailable(verifier, token)
    assert cache.fetch_count == 1
    assert failure == "connection-refused" or jwks_server.fetches == 1

    # A garbage or unsigned token is still a 401, not a 503.
    await _rejected(verifier, "garbage")
    # HS256 tokens do not depend on the JWKS.
    await verifier.verify(jwt.encode(user_claims(), HS256_SECRET, algorithm="HS256"))

    # After the cooldown: one new attempt.
    clock.advance(2)
    await _unavailable(verifier, token)
    assert cache.fetch_count == 2

    if failure != "connection-refused":
        # The endpoint recovers: keys arrive at the next attempt after the cooldown.
        jwks_server.reset()
        jwks_server.publish(keys.ec)
        await _unavailable(verifier, token)
        clock.advance(COOLDOWN_SECONDS + 1)
        await verifier.verify(token)
        assert cache.fetch_count == 3


async def test_an_empty_key_set_is_401_not_503(
    verifier: TokenVerifier, keys: Keys, jwks_server: JwksServer
) -> None:
    """A project on the legacy secret publishes an empty set: asymmetric tokens are simply
    not ours (401), and the endpoint is up (no 503)."""
    jwks_server.publish()
    await _rejected(verifier, keys.ec.sign(user_claims()))
    await verifier.verify(jwt.encode(user_claims(), HS256_SECRET, algorithm="HS256"))


# --- rotation -----------------------------------------------------------------------------------
async def test_key_rotation(
    verifier: TokenVerifier, keys: Keys, jwks_server: JwksServer, clock: FakeClock
) -> None:
    old_token = keys.ec.sign(user_claims())
    await verifier.verify(old_token)
    assert jwks_server.fetches == 1

    # Supabase publishes a standby key; a token signed with it arrives before the cooldown.
    jwks_server.publish(keys.ec, keys.ec_next)
    new_token = keys.ec_next.sign(user_claims())
    clock.advance(COOLDOWN_SECONDS - 1)
    await _rejected(verifier, new_token)
    assert jwks_server.fetches == 1

    # Cooldown over: one refetch, the new key is accepted, the old one still is.
    clock.advance(2)
    await verifier.verify(new_token)
    await verifier.verify(new_token)
    await verifier.verify(old_token)
    assert jwks_server.fetches == 2

    # The old key is revoked: dropped at the next refresh (cache expiry).
    jwks_server.publish(keys.ec_next)
    clock.advance(CACHE_SECONDS + 1)
    await _rejected(verifier, old_token)
    await verifier.verify(new_token)
    assert jwks_server.fetches == 3


# --- single flight ----------------------------------------------------------------------------
async def queued(cache: JwksCache, count: int) -> None:
    """Until `count` lookups wait behind the fetch in flight (on the cache's lock)."""

    def waiting() -> int:
        return len(cache._lock._waiters or ())  # type: ignore[attr-defined]

    await eventually(lambda: waiting() >= count, what=f"{count} lookups queued behind the fetch")


async def test_concurrent_lookups_of_an_unknown_kid_share_one_fetch(
    jwks: JwksCache, keys: Keys, jwks_server: JwksServer, clock: FakeClock
) -> None:
    await jwks.get_key(keys.ec.kid)
    jwks_server.publish(keys.ec, keys.ec_next)
    clock.advance(COOLDOWN_SECONDS + 1)
    jwks_server.gate = threading.Event()

    tasks = [asyncio.create_task(jwks.get_key(keys.ec_next.kid)) for _ in range(25)]
    await eventually(lambda: jwks_server.fetches >= 2, what="the second JWKS fetch")
    await queued(jwks, 24)  # every other lookup waits for the one fetching
    jwks_server.gate.set()
    found = await asyncio.gather(*tasks)

    assert {key.key_id for key in found} == {keys.ec_next.kid}
    assert jwks_server.fetches == 2


async def test_concurrent_cold_start_shares_one_fetch(
    verifier: TokenVerifier, jwks: JwksCache, keys: Keys, jwks_server: JwksServer
) -> None:
    jwks_server.gate = threading.Event()
    claims = [user_claims() for _ in range(30)]
    tasks = [
        asyncio.create_task(verifier.verify((keys.ec if i % 2 else keys.rsa).sign(c)))
        for i, c in enumerate(claims)
    ]
    await eventually(lambda: jwks_server.fetches >= 1, what="the JWKS fetch")
    await queued(jwks, 29)
    jwks_server.gate.set()
    verified = await asyncio.gather(*tasks)
    assert [str(v.user_id) for v in verified] == [c["sub"] for c in claims]
    assert jwks_server.fetches == 1


@pytest.mark.parametrize("outcome", ["succeeds", "fails"])
async def test_a_fetch_slower_than_the_cooldown_is_still_shared(
    keys: Keys, jwks_server: JwksServer, http: httpx.AsyncClient, clock: FakeClock, outcome: str
) -> None:
    """Requests that queue behind an in-flight fetch use its result, even when the fetch
    outlasts the cooldown (a hanging endpoint: fetch timeout 3 s, cooldown 1 s). Otherwise
    each queued request would refetch in turn, every one waiting for all the others."""
    cache = JwksCache(
        jwks_server.url, client=http, cache_seconds=CACHE_SECONDS, cooldown_seconds=1, clock=clock
    )
    if outcome == "fails":
        jwks_server.status = 500
    jwks_server.gate = threading.Event()

    first = asyncio.create_task(cache.get_key(keys.ec.kid))
    await eventually(lambda: jwks_server.fetches >= 1, what="the JWKS fetch")
    later = []
    for n in range(1, 11):  # requests keep arriving while the fetch hangs
        clock.advance(0.5)
        later.append(asyncio.create_task(cache.get_key(keys.ec.kid)))
        await queued(cache, n)
    clock.advance(3)
    jwks_server.gate.set()
    results = await asyncio.gather(first, *later, return_exceptions=True)

    if outcome == "succeeds":
        assert all(isinstance(r, jwt.PyJWK) for r in results), results
    else:
        assert all(type(r) is JwksUnavailable for r in results), results
    assert jwks_server.fetches == 1


# --- what the endpoint publishes ---------------------------------------------------------------
def _ec(keys: Keys, **changes: Any) -> dict[str, Any]:
    return {**keys.ec_next.public_jwk(), **changes}


BAD_ENTRIES: dict[str, Callable[[Keys], Any]] = {
    "oct-hs256": lambda k: {"kty": "oct", "k": b64url(HS256_SECRET.encode()), "alg": "HS256"},
    "use-enc": lambda k: _ec(k, use="enc"),
    "alg-missing": lambda k: _ec(k, alg=None),
    "alg-none": lambda k: _ec(k, alg="none"),
    "alg-es384": lambda k: _ec(k, alg="ES384"),
    "alg-a-list": lambda k: _ec(k, alg=["ES256"]),
    "kty-missing": lambda k: _ec(k, kty=None),
    "kty-unknown": lambda k: _ec(k, kty="XYZ"),
    "coordinates-too-short": lambda k: _ec(k, x=b64url(b"\x01" * 8)),
    "point-not-on-curve": lambda k: _ec(k, x=b64url(b"\x01" * 32), y=b64url(b"\x02" * 32)),
    "coordinates-not-base64": lambda k: _ec(k, x="***", y="***"),
    "ec-key-labelled-rs256": lambda k: _ec(k, alg="RS256"),
    "rsa-key-labelled-es256": lambda k: {**k.rsa.public_jwk(), "alg": "ES256"},
    "rsa-modulus-missing": lambda k: {**k.rsa.public_jwk(), "n": None},
    "kid-missing": lambda k: _ec(k, kid=None),
    "not-an-object": lambda k: "not-an-object",
}


@pytest.mark.parametrize("bad_entry", BAD_ENTRIES.values(), ids=BAD_ENTRIES.keys())
async def test_an_unusable_entry_in_the_key_set_is_skipped(
    verifier: TokenVerifier, keys: Keys, jwks_server: JwksServer, bad_entry: Callable[[Keys], Any]
) -> None:
    """One odd entry must not take verification with the good keys down with it."""
    entry = bad_entry(keys)
    if isinstance(entry, dict) and "kid" not in entry:
        entry["kid"] = "odd"
    jwks_server.publish(entry, keys.ec, keys.rsa)

    await verifier.verify(keys.ec.sign(user_claims()))
    await verifier.verify(keys.rsa.sign(user_claims()))
    for key in (keys.ec_next, keys.rsa):
        await _rejected(verifier, key.sign(user_claims(), kid="odd"))
    assert jwks_server.fetches == 1


async def test_a_published_symmetric_key_is_never_a_way_in(
    verifier_no_secret: TokenVerifier, keys: Keys, jwks_server: JwksServer
) -> None:
    secret = "s" * 64
    oct_jwk = {"kty": "oct", "k": b64url(secret.encode()), "kid": "oct", "alg": "HS256"}
    jwks_server.publish(oct_jwk, keys.ec)
    await verifier_no_secret.verify(keys.ec.sign(user_claims()))  # the set was fetched
    for alg in ("HS256", "ES256"):
        header = {"alg": alg, "kid": "oct"}
        await _rejected(verifier_no_secret, forge(header, user_claims(), hmac_key=secret.encode()))
    assert jwks_server.fetches == 1


async def test_get_key_errors(
    jwks: JwksCache, keys: Keys, jwks_server: JwksServer, http: httpx.AsyncClient
) -> None:
    assert (await jwks.get_key(keys.ec.kid)).key_id == keys.ec.kid
    assert (await jwks.get_key(keys.rsa.kid)).algorithm_name == "RS256"
    with pytest.raises(UnknownSigningKey):
        await jwks.get_key("nope")
    jwks_server.status = 500
    down = JwksCache(jwks_server.url, client=http)
    with pytest.raises(JwksUnavailable):
        await down.get_key(keys.ec.kid)
