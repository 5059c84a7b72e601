"""Settings: URL normalisation, simulator defaults, and refusing unsafe production configs."""

from __future__ import annotations

from typing import Any

import pytest

from facetoface.config import (
    DEV_JWT_SECRET,
    DEV_TOOL_SECRET,
    ConfigurationError,
    Settings,
    get_settings,
    normalize_database_url,
)
from tests.support.signing import TEST_CALLBACK_SIGNING_SECRET


def settings(**values: Any) -> Settings:
    # The test process runs with ENVIRONMENT=test, where the signing secret is required.
    values = {"callback_signing_secret": TEST_CALLBACK_SIGNING_SECRET, **values}
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (
            "postgres://u:p@db.example.com:5432/postgres",
            "postgresql+psycopg://u:p@db.example.com:5432/postgres",
        ),
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        (
            "postgresql://u:p@pooler.supabase.com:6543/postgres?sslmode=require",
            "postgresql+psycopg://u:p@pooler.supabase.com:6543/postgres?sslmode=require",
        ),
        # asyncpg's spelling, from configurations written for it.
        (
            "postgresql+asyncpg://u@h/db?ssl=require",
            "postgresql+psycopg://u@h/db?sslmode=require",
        ),
    ],
)
def test_database_urls_are_normalised(given: str, expected: str) -> None:
    assert normalize_database_url(given) == expected
    assert settings(database_url=given).sqlalchemy_url == expected


@pytest.mark.parametrize(
    ("url", "scheme"),
    [("mysql://x/y", "mysql"), ("sqlite:///data/facetoface.db", "sqlite"), ("", "")],
)
def test_unsupported_database_url_is_refused(url: str, scheme: str) -> None:
    """PostgreSQL is the only engine: a SQLite (or any other) URL is a configuration error."""
    with pytest.raises(ConfigurationError, match=f"scheme '{scheme}' is not supported"):
        normalize_database_url(url)


def test_an_unset_database_url_names_the_embedded_postgresql() -> None:
    """Code that needs a database without DATABASE_URL is told where the URL comes from (the
    commands fill it in with the embedded PostgreSQL's)."""
    with pytest.raises(ConfigurationError, match="DATABASE_URL is not set.*embedded PostgreSQL"):
        _ = settings(database_url="").sqlalchemy_url


def test_development_defaults_use_the_simulator_and_dev_issuer() -> None:
    s = settings(environment="development")
    assert s.uses_simulator
    assert s.effective_tavus_base_url == "http://127.0.0.1:8100/v2"
    assert s.hs256_secret == DEV_JWT_SECRET
    assert s.default_persona_id
    assert s.default_replica_id
    s.check_production_ready()  # development never refuses


def test_a_tavus_key_switches_to_real_tavus() -> None:
    s = settings(tavus_api_key="tvsk_123")
    assert not s.uses_simulator
    assert s.effective_tavus_base_url == "https://tavusapi.com/v2"
    assert s.default_persona_id is None


def test_production_without_secrets_refuses_with_every_reason() -> None:
    s = settings(environment="production")
    with pytest.raises(ConfigurationError) as info:
        s.check_production_ready()
    message = str(info.value)
    for needed in ("TAVUS_API_KEY", "SUPABASE_URL", "DATABASE_URL", "PUBLIC_BASE_URL"):
        assert needed in message
    assert s.hs256_secret is None, "production never falls back to the dev secret"


def test_production_refuses_the_development_secret() -> None:
    s = settings(
        environment="production",
        tavus_api_key="tvsk_123",
        tavus_default_replica_id="r1",
        supabase_url="https://proj.supabase.co",
        database_url="postgresql://u@h/db",
        public_base_url="https://api.example.com",
        supabase_jwt_secret=DEV_JWT_SECRET,
    )
    with pytest.raises(ConfigurationError, match="SUPABASE_JWT_SECRET"):
        s.check_production_ready()


PRODUCTION: dict[str, Any] = {
    "environment": "production",
    "tavus_api_key": "tvsk_123",
    "tavus_default_persona_id": "p1",
    "supabase_url": "https://proj.supabase.co/",
    "database_url": "postgresql://u@h/db",
    "public_base_url": "https://api.example.com",
    "deployment_name": "acme-prod",
    "metrics_token": "Zq3v9Xw2LpT7sKd4HfN8bRc1YgM6jE5a",
    "callback_signing_secret": "c" * 40,
}


def test_complete_production_config_starts() -> None:
    s = settings(**PRODUCTION)
    s.check_production_ready()
    assert s.jwt_issuer == "https://proj.supabase.co/auth/v1"
    assert s.jwks_url == "https://proj.supabase.co/auth/v1/.well-known/jwks.json"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        # Signing keys fetched in cleartext could be swapped on the way.
        ({"supabase_url": "http://proj.supabase.co"}, "SUPABASE_URL must be https://"),
        # Callback URLs carry their secret token in the path.
        ({"public_base_url": "http://api.example.com"}, "PUBLIC_BASE_URL must be https://"),
        ({"public_base_url": "http://127.0.0.1:8000"}, "PUBLIC_BASE_URL names a private"),
        # Two deployments left at the default would look alike at Tavus.
        ({"deployment_name": "facetoface"}, "DEPLOYMENT_NAME is the default"),
        # Tavus cannot reach a private address, https or not.
        ({"public_base_url": "https://127.0.0.1:8443"}, "PUBLIC_BASE_URL names a private"),
        ({"public_base_url": "https://10.1.2.3"}, "PUBLIC_BASE_URL names a private"),
        ({"public_base_url": "https://localhost"}, "PUBLIC_BASE_URL names a private"),
        ({"public_base_url": "https://api.internal"}, "PUBLIC_BASE_URL names a private"),
        # The API key travels in every request.
        ({"tavus_base_url": "http://tavusapi.com/v2"}, "TAVUS_BASE_URL must be https://"),
        ({"tavus_api_key": "sim-key"}, "TAVUS_API_KEY is the simulator's key"),
        # /metrics public, or guarded by a guessable token.
        ({"metrics_token": None}, "METRICS_TOKEN is not set"),
        ({"metrics_token": "1"}, "METRICS_TOKEN is weak"),
        ({"metrics_token": "a" * 64}, "METRICS_TOKEN is weak"),
        ({"metrics_token": None, "metrics_port": 9100, "metrics_host": "0.0.0.0"}, "METRICS_HOST"),
        ({"metrics_token": None, "metrics_port": 9100, "metrics_host": "8.8.8.8"}, "METRICS_HOST"),
        ({"cors_allowed_origins": ["null"]}, "CORS_ALLOWED_ORIGINS has null"),
        ({"cors_allowed_origins": ["http://app.example.com"]}, "CORS_ALLOWED_ORIGINS has http"),
        ({"supabase_jwt_secret": DEV_JWT_SECRET}, "SUPABASE_JWT_SECRET is the development"),
    ],
)
def test_production_refuses_cleartext_and_default_names(
    change: dict[str, Any], reason: str
) -> None:
    s = settings(**{**PRODUCTION, **change})
    with pytest.raises(ConfigurationError, match=reason):
        s.check_production_ready()


@pytest.mark.parametrize("secret", [None, "short"])
@pytest.mark.parametrize("environment", ["production", "test"])
def test_outside_development_the_callback_signing_secret_is_required(
    environment: str, secret: str | None
) -> None:
    s = settings(**{**PRODUCTION, "environment": environment, "callback_signing_secret": secret})
    with pytest.raises(ConfigurationError, match="CALLBACK_SIGNING_SECRET"):
        s.check_production_ready()
    if secret is None:
        with pytest.raises(ConfigurationError, match="CALLBACK_SIGNING_SECRET"):
            _ = s.callback_signing_key  # never a default outside development


def test_development_derives_a_callback_signing_key_per_deployment() -> None:
    def development(**values: Any) -> Settings:
        return settings(environment="development", callback_signing_secret=None, **values)

    assert development().callback_signing_key == development().callback_signing_key
    assert (
        development().callback_signing_key != development(deployment_name="b").callback_signing_key
    )
    given = settings(environment="development", callback_signing_secret="s" * 32)
    assert given.callback_signing_key == b"s" * 32


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:54321", "http://localhost:54321", "http://[::1]:54321"]
)
def test_a_supabase_stack_on_this_machine_may_be_plain_http(url: str) -> None:
    settings(**{**PRODUCTION, "supabase_url": url}).check_production_ready()
    with pytest.raises(ConfigurationError, match="SUPABASE_URL must be https://"):
        settings(
            **{**PRODUCTION, "supabase_url": "http://127.0.0.1.example.com"}
        ).check_production_ready()


def test_openapi_is_served_in_development_only_unless_enabled() -> None:
    assert settings(environment="development").serves_openapi
    assert not settings(**PRODUCTION).serves_openapi
    assert not settings(environment="test").serves_openapi
    assert settings(**PRODUCTION, openapi_enabled=True).serves_openapi


def test_bad_values_are_refused() -> None:
    with pytest.raises(ValueError, match="session_max_call_duration_seconds"):
        settings(session_max_call_duration_seconds=7200)
    with pytest.raises(ValueError, match="deployment_name"):
        settings(deployment_name="Has Spaces")


def test_a_private_metrics_port_needs_no_token() -> None:
    settings(
        **{**PRODUCTION, "metrics_token": None, "metrics_port": 9100, "metrics_host": "10.0.0.5"}
    ).check_production_ready()


def test_each_refusal_is_one_line() -> None:
    s = settings(environment="production", cors_allowed_origins=["null"], tavus_api_key="sim-key")
    with pytest.raises(ConfigurationError) as info:
        s.check_production_ready()
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://a.example,https://b.example", ["https://a.example", "https://b.example"]),
        (" https://a.example , ", ["https://a.example"]),
        ('["https://a.example"]', ["https://a.example"]),
        ("", []),
    ],
)
def test_origin_lists_accept_commas_or_json(
    value: str, expected: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CORS_ALLOWED_ORIGINS", value)
    monkeypatch.setenv("CONSOLE_FRAME_ORIGINS", value)
    s = get_settings()
    assert s.cors_allowed_origins == expected
    assert s.console_frame_origins == expected


@pytest.mark.parametrize(
    ("name", "value", "example"),
    [
        ("PORT", "abc", "PORT=8000"),
        (
            "CORS_ALLOWED_ORIGINS",
            "[oops",
            "CORS_ALLOWED_ORIGINS=https://a.example,https://b.example",
        ),
        ("SESSION_MAX_CALL_DURATION_SECONDS", "7200", "SESSION_MAX_CALL_DURATION_SECONDS=900"),
        ("ENVIRONMENT", "staging", "ENVIRONMENT=development"),
        ("DB_ROW_LEVEL_SECURITY", "maybe", "DB_ROW_LEVEL_SECURITY=true"),
    ],
)
def test_an_unreadable_setting_is_one_line_with_an_example(
    name: str, value: str, example: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as info:
        get_settings()
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(name)
    assert f"(e.g. {example})" in message


def test_the_default_mentor_is_named_with_pal_and_face() -> None:
    s = settings(tavus_api_key="tvsk_123", tavus_default_pal_id="p1", tavus_default_face_id="r1")
    assert (s.default_persona_id, s.default_replica_id) == ("p1", "r1")


def test_the_old_persona_and_replica_names_still_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAVUS_DEFAULT_PERSONA_ID", "pold")
    monkeypatch.setenv("TAVUS_DEFAULT_REPLICA_ID", "rold")
    s = settings(tavus_api_key="tvsk_123")
    assert (s.default_persona_id, s.default_replica_id) == ("pold", "rold")

    # Both set: the current name wins.
    monkeypatch.setenv("TAVUS_DEFAULT_PAL_ID", "pnew")
    monkeypatch.setenv("TAVUS_DEFAULT_FACE_ID", "rnew")
    s = settings(tavus_api_key="tvsk_123")
    assert (s.default_persona_id, s.default_replica_id) == ("pnew", "rnew")


def test_production_asks_for_a_pal_or_a_face() -> None:
    s = settings(**{**PRODUCTION, "tavus_default_persona_id": ""})
    with pytest.raises(
        ConfigurationError, match="TAVUS_DEFAULT_PAL_ID and/or TAVUS_DEFAULT_FACE_ID"
    ):
        s.check_production_ready()


@pytest.mark.parametrize("environment", ["test", "production"])
def test_only_development_signs_tool_calls_with_the_published_secret(environment: str) -> None:
    """The development tool secret is published: outside development the tools are off until
    TAVUS_TOOL_SECRET is set (a forged tool call in a test deployment changes nothing)."""
    assert settings(environment=environment, tavus_tool_secret=None).tool_secret is None
    assert Settings(_env_file=None, environment="development").tool_secret == DEV_TOOL_SECRET  # type: ignore[call-arg]
