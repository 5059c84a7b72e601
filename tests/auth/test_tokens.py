"""TokenVerifier against a real JWKS endpoint: what verifies, and every attack that must be
one plain `Unauthorized` (never another error, never a reason the caller can read)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from types import SimpleNamespace
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI

from facetoface.app import create_app
from facetoface.auth.dependencies import CurrentIdentity
from facetoface.auth.dev_issuer import mint_token
from facetoface.auth.tokens import AuthUnavailable, TokenVerifier
from facetoface.config import DEV_JWT_SECRET, LOCAL_ISSUER, ConfigurationError, Settings
from facetoface.errors import PROBLEM_JSON, ServiceUnavailable, Unauthorized, install_error_handlers
from tests.auth.jwtkit import (
    DROP,
    HS256_SECRET,
    ISSUER,
    JWKS_PATH,
    JwksServer,
    Keys,
    api_key_claims,
    b64json,
    b64url,
    forge,
    user_claims,
)
from tests.conftest import app_role_url

NOW = int(time.time())


async def rejected(verifier: TokenVerifier, token: str) -> Unauthorized:
    """Assert the token is refused with exactly `Unauthorized`; return it."""
    with pytest.raises(Unauthorized) as excinfo:
        await verifier.verify(token)
    assert type(excinfo.value) is Unauthorized
    return excinfo.value


# --- valid tokens ----------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["ec", "rsa"])
async def test_asymmetric_user_token_verifies(
    verifier: TokenVerifier, keys: Keys, jwks_server: JwksServer, which: str
) -> None:
    key = keys.ec if which == "ec" else keys.rsa
    claims = user_claims()
    token = key.sign(claims)
    assert jwt.get_unverified_header(token)["alg"] == ("ES256" if which == "ec" else "RS256")

    verified = await verifier.verify(token)

    assert verified.user_id == uuid.UUID(claims["sub"])
    assert verified.claims == claims
    assert verified.email == "ada@example.com"
    assert verified.is_anonymous is False
    assert jwks_server.fetches == 1


async def test_both_published_keys_verify_after_a_single_fetch(
    verifier: TokenVerifier, keys: Keys, jwks_server: JwksServer
) -> None:
    for _ in range(3):
        await verifier.verify(keys.ec.sign(user_claims()))
        await verifier.verify(keys.rsa.sign(user_claims()))
    assert jwks_server.fetches == 1


@pytest.mark.parametrize("aud", [["authenticated"], ["other-api", "authenticated"]])
async def test_audience_as_a_list(verifier: TokenVerifier, keys: Keys, aud: list[str]) -> None:
    claims = user_claims(aud=aud)
    verified = await verifier.verify(keys.ec.sign(claims))
    assert verified.claims["aud"] == aud


async def test_anonymous_sign_in_is_authenticated_and_flagged(
    verifier: TokenVerifier, keys: Keys
) -> None:
    verified = await verifier.verify(keys.ec.sign(user_claims(is_anonymous=True, email="")))
    assert verified.is_anonymous is True
    assert verified.email == ""


@pytest.mark.parametrize(
    "overrides",
    [
        {"exp": -10},  # expired 10 s ago: inside the 30 s leeway
        {"nbf": +10},  # valid in 10 s: inside the leeway (clock skew)
        {"iat": +10},
        {"email": DROP, "phone": DROP, "session_id": DROP, "is_anonymous": DROP},
    ],
    ids=["exp-within-leeway", "nbf-within-leeway", "iat-within-leeway", "minimal-claims"],
)
async def test_accepted_edge_cases(
    verifier: TokenVerifier, keys: Keys, overrides: dict[str, Any]
) -> None:
    # Time claims are offsets from now, taken when the test runs (not at import: a long
    # parallel run would otherwise push "10 s ago" past the leeway).
    now = int(time.time())
    times = {k: now + v for k, v in overrides.items() if k in {"exp", "nbf", "iat"}}
    claims = user_claims(**{**overrides, **times})
    verified = await verifier.verify(keys.ec.sign(claims))
    assert verified.user_id == uuid.UUID(claims["sub"])


async def test_legacy_hs256_user_token_verifies_with_the_configured_secret(
    verifier: TokenVerifier, jwks_server: JwksServer
) -> None:
    claims = user_claims()
    verified = await verifier.verify(jwt.encode(claims, HS256_SECRET, algorithm="HS256"))
    assert verified.user_id == uuid.UUID(claims["sub"])
    assert jwks_server.fetches == 0  # the HS256 path never touches the JWKS


# --- attacks -----------------------------------------------------------------------------------
def _hs256(claims: dict[str, Any], secret: str | bytes = HS256_SECRET, **headers: Any) -> str:
    return jwt.encode(claims, secret, algorithm="HS256", headers=headers or None)


def _tampered(keys: Keys) -> str:
    header, _, signature = keys.ec.sign(user_claims()).split(".")
    return f"{header}.{b64json(user_claims(sub=str(uuid.uuid4())))}.{signature}"


def _stripped_signature(keys: Keys) -> str:
    header, payload, _ = keys.ec.sign(user_claims()).split(".")
    return f"{header}.{payload}."


def _header_only(header: Any) -> str:
    return f"{b64json(header)}.{b64json(user_claims())}.{b64url(b'sig')}"


Case = Callable[[Keys], str]

ATTACKS: dict[str, Case] = {
    # unsigned
    "alg-none": lambda k: forge({"alg": "none", "typ": "JWT"}, user_claims()),
    "alg-none-with-known-kid": lambda k: forge({"alg": "none", "kid": k.ec.kid}, user_claims()),
    "alg-None": lambda k: forge({"alg": "None"}, user_claims()),
    "alg-NONE": lambda k: forge({"alg": "NONE", "kid": k.ec.kid}, user_claims()),
    "alg-none-with-signature": lambda k: forge({"alg": "none"}, user_claims(), signature=b"x"),
    # key confusion: the public key used as the HMAC secret
    "hs256-secret=ec-public-pem": lambda k: forge(
        {"alg": "HS256", "kid": k.ec.kid}, user_claims(), hmac_key=k.ec.public_pem()
    ),
    "hs256-secret=rsa-public-pem": lambda k: forge(
        {"alg": "HS256", "kid": k.rsa.kid}, user_claims(), hmac_key=k.rsa.public_pem()
    ),
    "hs256-secret=ec-public-jwk": lambda k: forge(
        {"alg": "HS256", "kid": k.ec.kid},
        user_claims(),
        hmac_key=json.dumps(k.ec.public_jwk()).encode(),
    ),
    "hs256-secret=rsa-public-jwk": lambda k: forge(
        {"alg": "HS256", "kid": k.rsa.kid},
        user_claims(),
        hmac_key=json.dumps(k.rsa.public_jwk(), separators=(",", ":")).encode(),
    ),
    "hs256-secret=ec-jwk-x": lambda k: forge(
        {"alg": "HS256", "kid": k.ec.kid}, user_claims(), hmac_key=k.ec.public_jwk()["x"].encode()
    ),
    "hs512-secret=rsa-public-pem": lambda k: forge(
        {"alg": "HS512", "kid": k.rsa.kid}, user_claims(), hmac_key=k.rsa.public_pem()
    ),
    # time
    "expired": lambda k: k.ec.sign(user_claims(iat=NOW - 7200, exp=NOW - 3600)),
    "expired-beyond-leeway": lambda k: k.ec.sign(user_claims(iat=NOW - 3700, exp=NOW - 60)),
    "nbf-in-the-future": lambda k: k.ec.sign(user_claims(nbf=NOW + 600)),
    "iat-in-the-future": lambda k: k.ec.sign(user_claims(iat=NOW + 600, exp=NOW + 4200)),
    "exp-missing": lambda k: k.ec.sign(user_claims(exp=DROP)),
    "exp-not-a-number": lambda k: k.ec.sign(user_claims(exp="tomorrow")),
    # audience / issuer
    "aud-wrong": lambda k: k.ec.sign(user_claims(aud="anon")),
    "aud-wrong-list": lambda k: k.ec.sign(user_claims(aud=["other-api"])),
    "aud-missing": lambda k: k.ec.sign(user_claims(aud=DROP)),
    "iss-other-project": lambda k: k.ec.sign(user_claims(iss="https://evil.supabase.co/auth/v1")),
    "iss-supabase": lambda k: k.ec.sign(user_claims(iss="supabase")),
    "iss-trailing-slash": lambda k: k.ec.sign(user_claims(iss=ISSUER + "/")),
    "iss-missing": lambda k: k.ec.sign(user_claims(iss=DROP)),
    # subject / role
    "sub-missing": lambda k: k.ec.sign(user_claims(sub=DROP)),
    "sub-not-a-uuid": lambda k: k.ec.sign(user_claims(sub="user-42")),
    "sub-empty": lambda k: k.ec.sign(user_claims(sub="")),
    "sub-an-integer": lambda k: k.ec.sign(user_claims(sub=42)),
    "role-anon": lambda k: k.ec.sign(user_claims(role="anon")),
    "role-service_role": lambda k: k.ec.sign(user_claims(role="service_role")),
    "role-supabase_admin": lambda k: k.ec.sign(user_claims(role="supabase_admin")),
    "role-missing": lambda k: k.ec.sign(user_claims(role=DROP)),
    "role-service_role-hs256": lambda k: _hs256(user_claims(role="service_role")),
    # legacy API keys, validly signed with the project's HS256 secret
    "legacy-anon-api-key": lambda k: _hs256(api_key_claims("anon")),
    "legacy-service_role-api-key": lambda k: _hs256(api_key_claims("service_role")),
    "legacy-service_role-api-key-typ": lambda k: _hs256(api_key_claims("service_role"), typ="JWT"),
    # signatures and keys
    "unknown-ec-key-with-known-kid": lambda k: k.attacker_ec.sign(user_claims(), kid=k.ec.kid),
    "unknown-ec-key-with-rsa-kid": lambda k: k.attacker_ec.sign(user_claims(), kid=k.rsa.kid),
    "es256-header-with-rsa-kid": lambda k: k.ec.sign(user_claims(), kid=k.rsa.kid),
    "rs256-header-with-ec-kid": lambda k: k.rsa.sign(user_claims(), kid=k.ec.kid),
    "unknown-kid": lambda k: k.ec.sign(user_claims(), kid="no-such-kid"),
    "attacker-kid": lambda k: k.attacker_ec.sign(user_claims()),
    "no-kid": lambda k: k.ec.sign(user_claims(), omit_kid=True),
    "empty-kid": lambda k: k.ec.sign(user_claims(), kid=""),
    "kid-not-a-string": lambda k: forge({"alg": "ES256", "kid": 1}, user_claims(), signature=b"s"),
    "embedded-jwk-header": lambda k: k.attacker_ec.sign(
        user_claims(), kid=k.ec.kid, headers={"jwk": k.attacker_ec.public_jwk()}
    ),
    "es384-with-known-kid": lambda k: k.attacker_p384.sign(user_claims(), kid=k.ec.kid),
    "ps256-with-rsa-kid": lambda k: k.rsa.sign(user_claims(), alg="PS256"),
    "hs512-with-the-secret": lambda k: jwt.encode(user_claims(), HS256_SECRET, algorithm="HS512"),
    "hs256-with-another-secret": lambda k: _hs256(user_claims(), "not-the-project-secret" * 2),
    "unsupported-crit-header": lambda k: k.ec.sign(user_claims(), headers={"crit": ["exp"]}),
    "tampered-payload": _tampered,
    "stripped-signature": _stripped_signature,
    # garbage
    "empty-string": lambda k: "",
    "word": lambda k: "garbage",
    "dots": lambda k: "...",
    "three-segments-of-junk": lambda k: "a.b.c",
    "non-ascii": lambda k: "ü.ö.ä",
    "two-segments": lambda k: "eyJhbGciOiJFUzI1NiJ9.e30",
    "bearer-prefixed": lambda k: "Bearer " + k.ec.sign(user_claims()),
    "header-not-json": lambda k: f"{b64url(b'not json')}.{b64json({})}.{b64url(b's')}",
    "header-a-list": lambda k: _header_only(["ES256"]),
    "header-null": lambda k: _header_only(None),
    "alg-a-list": lambda k: _header_only({"alg": ["ES256"], "kid": k.ec.kid}),
    "alg-an-object": lambda k: _header_only({"alg": {"name": "HS256"}}),
    "alg-null": lambda k: _header_only({"alg": None}),
    "alg-missing": lambda k: _header_only({"kid": k.ec.kid}),
    "header-deeply-nested": lambda k: f"{b64url(b'[' * 50_000)}.{b64json({})}.{b64url(b's')}",
    "huge-token": lambda k: "x" * 100_000,
    "payload-not-base64": lambda k: k.ec.sign(user_claims()).split(".")[0] + ".!!!.AAAA",
}


@pytest.mark.parametrize("make_token", ATTACKS.values(), ids=ATTACKS.keys())
async def test_attack_is_rejected(
    any_verifier: TokenVerifier, keys: Keys, jwks_server: JwksServer, make_token: Case
) -> None:
    await rejected(any_verifier, make_token(keys))
    assert jwks_server.fetches <= 1  # no token can buy more than the first fetch
    assert jwks_server.paths in ([], [JWKS_PATH])


async def test_hs256_user_token_rejected_when_no_secret_is_configured(
    verifier_no_secret: TokenVerifier, jwks_server: JwksServer
) -> None:
    await rejected(verifier_no_secret, jwt.encode(user_claims(), HS256_SECRET, algorithm="HS256"))
    assert jwks_server.fetches == 0


async def test_asymmetric_token_rejected_when_no_jwks_is_configured(keys: Keys) -> None:
    verifier = TokenVerifier(issuer=ISSUER, hs256_secret=HS256_SECRET)
    await rejected(verifier, keys.ec.sign(user_claims()))


async def test_jku_and_x5u_headers_are_never_followed(
    verifier: TokenVerifier, keys: Keys, jwks_server: JwksServer
) -> None:
    """The key source is configuration, never the token: a `jku` pointing at an attacker's set
    (here, another path on the same server, which records every request) is ignored."""
    evil = jwks_server.base_url + "/evil/jwks.json"
    token = keys.attacker_ec.sign(user_claims(), headers={"jku": evil, "x5u": evil})
    await rejected(verifier, token)
    assert jwks_server.paths == [JWKS_PATH]


async def test_rejections_do_not_say_why(verifier: TokenVerifier, keys: Keys) -> None:
    """Every failure looks the same to the caller; the reason is kept for the log only."""
    errors = [
        await rejected(verifier, make(keys))
        for make in (ATTACKS["expired"], ATTACKS["aud-wrong"], ATTACKS["alg-none"], ATTACKS["word"])
    ]
    assert {(e.detail, e.status_code, e.code, tuple(e.headers.items())) for e in errors} == {
        (
            "A valid bearer access token is required.",
            401,
            "unauthorized",
            (("WWW-Authenticate", 'Bearer error="invalid_token"'),),
        )
    }
    assert len({e.reason for e in errors}) == len(errors)


# --- the development issuer ----------------------------------------------------------------
def _settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def _clean_auth_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SUPABASE_URL", "SUPABASE_JWT_SECRET", "PUBLIC_BASE_URL", "JWT_AUDIENCE"):
        monkeypatch.delenv(name, raising=False)


def _verifier_for(settings: Settings) -> TokenVerifier:
    return TokenVerifier(
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        hs256_secret=settings.hs256_secret,
        leeway_seconds=settings.jwt_leeway_seconds,
    )


@pytest.mark.usefixtures("_clean_auth_env")
async def test_dev_issuer_tokens_verify_in_development() -> None:
    settings = _settings(environment="development")
    assert settings.hs256_secret == DEV_JWT_SECRET
    user_id = uuid.uuid4()
    token = mint_token(settings, user_id=user_id, email="dev@example.com", is_anonymous=True)

    verified = await _verifier_for(settings).verify(token)

    assert verified.user_id == user_id
    assert verified.email == "dev@example.com"
    assert verified.is_anonymous is True
    # A constant issuer: a token works whatever port `serve` was given.
    assert verified.claims["iss"] == LOCAL_ISSUER
    assert _settings(environment="development", port=18130).jwt_issuer == LOCAL_ISSUER
    assert verified.claims["role"] == "authenticated"
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


@pytest.mark.usefixtures("_clean_auth_env")
@pytest.mark.parametrize("environment", ["test", "production"])
async def test_only_development_trusts_the_development_secret(environment: str) -> None:
    """The development secret is published: any other environment has no HS256 path without
    its own secret, so a token signed with the development secret (operator claim and all)
    verifies nowhere else; and given as SUPABASE_JWT_SECRET it is refused at start."""
    settings = _settings(environment=environment)
    assert settings.hs256_secret is None
    dev_token = mint_token(
        _settings(environment="development"), user_id=uuid.uuid4(), operator=True
    )
    await rejected(_verifier_for(settings), dev_token)
    with pytest.raises(ConfigurationError, match="SUPABASE_JWT_SECRET is the development"):
        _settings(
            environment=environment, supabase_jwt_secret=DEV_JWT_SECRET
        ).check_production_ready()


@pytest.mark.usefixtures("_clean_auth_env")
async def test_dev_issuer_tokens_from_another_secret_are_rejected() -> None:
    settings = _settings(environment="development")
    other = _settings(environment="test", supabase_jwt_secret="another-secret-" + "x" * 32)
    await rejected(_verifier_for(settings), mint_token(other, user_id=uuid.uuid4()))
    # ...and the other way round: a real project secret refuses dev-secret tokens.
    await rejected(_verifier_for(other), mint_token(settings, user_id=uuid.uuid4()))


@pytest.mark.usefixtures("_clean_auth_env")
async def test_dev_issuer_refuses_production_without_a_secret() -> None:
    production = _settings(environment="production", supabase_url="https://proj.supabase.co")
    assert production.hs256_secret is None
    with pytest.raises(RuntimeError):
        mint_token(production, user_id=uuid.uuid4())
    # A production verifier has no HS256 path at all: dev tokens are refused.
    dev_token = mint_token(_settings(environment="development"), user_id=uuid.uuid4())
    await rejected(_verifier_for(production), dev_token)


@pytest.mark.usefixtures("_clean_auth_env")
async def test_dev_issuer_expired_token_is_rejected() -> None:
    settings = _settings(environment="development", jwt_leeway_seconds=0)
    token = mint_token(settings, user_id=uuid.uuid4())
    claims = jwt.decode(token, options={"verify_signature": False})
    claims.update(iat=NOW - 7200, exp=NOW - 3600)
    await rejected(_verifier_for(settings), jwt.encode(claims, DEV_JWT_SECRET, algorithm="HS256"))


# --- over HTTP ---------------------------------------------------------------------------------
@pytest.fixture
async def client(verifier: TokenVerifier) -> AsyncIterator[httpx.AsyncClient]:
    """A minimal app: one route behind `CurrentIdentity`, the service's error handlers."""
    app = FastAPI()
    # What `authenticate` reads: the app's services (`app_state`); only the verifier is used.
    app.state.services = SimpleNamespace(token_verifier=verifier)
    install_error_handlers(app)

    @app.get("/me")
    async def me(identity: CurrentIdentity) -> dict[str, Any]:
        return {"user_id": str(identity.user_id), "role": identity.claims["role"]}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as client:
        yield client


async def test_http_valid_token(client: httpx.AsyncClient, keys: Keys) -> None:
    claims = user_claims()
    for scheme in ("Bearer", "bearer"):
        response = await client.get(
            "/me", headers={"Authorization": f"{scheme} {keys.ec.sign(claims)}"}
        )
        assert response.status_code == 200
        assert response.json() == {"user_id": claims["sub"], "role": "authenticated"}


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Token abc",
        "Bearer garbage",
        "expired",
        "alg-none",
        "key-confusion",
        "service-role-key",
        "unknown-kid",
    ],
)
async def test_http_rejections_are_one_uninformative_problem(
    client: httpx.AsyncClient, keys: Keys, authorization: str | None
) -> None:
    tokens = {
        "expired": ATTACKS["expired"],
        "alg-none": ATTACKS["alg-none"],
        "key-confusion": ATTACKS["hs256-secret=ec-public-pem"],
        "service-role-key": ATTACKS["legacy-service_role-api-key"],
        "unknown-kid": ATTACKS["unknown-kid"],
    }
    if authorization in tokens:
        authorization = "Bearer " + tokens[authorization](keys)
    headers = {} if authorization is None else {"Authorization": authorization}

    response = await client.get("/me", headers=headers)

    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert body == {
        "type": "https://facetoface.dev/problems/unauthorized",
        "title": "Authentication required",
        "status": 401,
        "detail": "A valid bearer access token is required.",
        "code": "unauthorized",
        "request_id": None,
    }


async def test_http_jwks_unavailable_is_a_503_problem(
    client: httpx.AsyncClient, keys: Keys, jwks_server: JwksServer
) -> None:
    jwks_server.status = 500
    response = await client.get(
        "/me", headers={"Authorization": f"Bearer {keys.ec.sign(user_claims())}"}
    )
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.headers["retry-after"].isdigit()
    assert "www-authenticate" not in response.headers
    assert response.json()["code"] == "auth_unavailable"
    assert issubclass(AuthUnavailable, ServiceUnavailable)
    assert not issubclass(AuthUnavailable, Unauthorized)


async def test_real_app_uses_the_project_jwks(
    keys: Keys,
    jwks_server: JwksServer,
    database_settings: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`create_app`: issuer and JWKS URL derive from SUPABASE_URL; a valid ES256 token gets
    past authentication (404: no such session), an attack gets the 401 problem."""
    for name in ("SUPABASE_JWT_SECRET", "JWT_AUDIENCE"):
        monkeypatch.delenv(name, raising=False)
    settings = _settings(
        environment="test",
        supabase_url=jwks_server.base_url + "/",
        database_url=app_role_url(database_settings["database_url"]),
        reconcile_interval_seconds=0,
    )
    assert settings.jwks_url == jwks_server.url
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        good = keys.ec.sign(user_claims(iss=f"{jwks_server.base_url}/auth/v1"))
        response = await client.get(
            f"/v1/sessions/{uuid.uuid4()}", headers={"Authorization": f"Bearer {good}"}
        )
        assert response.status_code == 404, response.text
        forged = keys.attacker_ec.sign(
            user_claims(iss=f"{jwks_server.base_url}/auth/v1"), kid=keys.ec.kid
        )
        response = await client.get(
            f"/v1/sessions/{uuid.uuid4()}", headers={"Authorization": f"Bearer {forged}"}
        )
        assert response.status_code == 401
        assert response.json()["code"] == "unauthorized"
    assert jwks_server.paths == [JWKS_PATH]
