"""Settings: one place for every knob, read from the environment (and a `.env` file).

Every variable is documented in the README's configuration table. Outside development,
`Settings.check_production_ready()` refuses missing or default secrets; `serve` calls it before
it binds a port.

It is long on purpose: every setting, its bounds, its comment and the rules that refuse unsafe
combinations are in this one file, so a reader (and `.env.example`'s test) finds them all here.
"""

from __future__ import annotations

import hashlib
import ipaddress
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

#: Secret used by the development token issuer. Published (it is in this file), so it works
#: with `ENVIRONMENT=development` only: every other environment refuses to start with it.
DEV_JWT_SECRET = "facetoface-development-secret-do-not-use-in-production"
#: The `iss` of tokens signed with an HS256 secret when no `SUPABASE_URL` is set: a constant,
#: so a token from `facetoface token` works whatever port `serve` listens on.
LOCAL_ISSUER = "facetoface-local/auth/v1"
#: The shortest secret production accepts: the signing keys, and `METRICS_TOKEN` (a bearer
#: secret guessed at scrape speed).
MIN_SECRET_CHARS = 32
#: API key the built-in simulator accepts; meaningless against the real Tavus.
SIM_API_KEY = "sim-key"
#: PAL/Face (Tavus's current names for persona/replica, same ids) the simulator is given when
#: no default is configured (Tavus stock IDs).
DEV_PERSONA_ID = "pcb7a34da5fe"
DEV_REPLICA_ID = "r90bbd427f71"
#: Signs Tavus's tool calls in development and tests when TAVUS_TOOL_SECRET is unset; refused
#: outside development.
DEV_TOOL_SECRET = "facetoface-development-tool-secret-do-not-use"
#: Refused in production: two deployments left at the default look alike in Tavus's lists.
DEFAULT_DEPLOYMENT_NAME = "facetoface"


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class ConfigurationError(Exception):
    """The configuration cannot run safely; the message says what to set."""


def unreachable_host_reason(host: str) -> str | None:
    """Why `host` cannot be reached from the internet (this machine, a private, link-local or
    reserved address, or a name that only resolves inside a network: `*.localhost`,
    `*.local`, `*.internal`, a name without a dot), or None when it may be public. The one
    rule behind production's refusals and the doctor's public-address check."""
    host = host.lower().rstrip(".")
    if not host or host == "localhost" or host.endswith(".localhost"):
        return "a loopback name"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if host.endswith((".local", ".internal")) or "." not in host:
            return "a name that resolves only inside a network"
        return None
    if address.is_loopback:
        return "a loopback address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_private or address.is_link_local or address.is_reserved:
        return "a private address"
    return None


def _is_private_host(host: str) -> bool:
    return unreachable_host_reason(host) is not None


def _strong_secret(value: str) -> bool:
    """At least `MIN_SECRET_CHARS` characters, and not a repetition of a few (entropy of
    its characters ≥ 3 bits each: `1`, `aaaa…` or `abab…` are not secrets)."""
    import math
    from collections import Counter

    if len(value) < MIN_SECRET_CHARS:
        return False
    counts = Counter(value)
    entropy = -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())
    return entropy >= 3.0


def is_loopback_url(url: str) -> bool:
    """True when `url` names this machine (127.0.0.0/8, ::1, localhost): nothing fetched
    from it crosses a network."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    environment: Environment = Environment.development
    data_dir: Path = Path("data")
    log_level: str = "INFO"
    #: `console` for people, `json` for log pipelines; empty = by environment.
    log_format: Literal["", "console", "json"] = ""

    # --- HTTP -----------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = 8000
    #: Base URL Tavus reaches this service on; callback URLs are built from it. HTTPS in
    #: production (the callback URLs carry their secret token in the path).
    public_base_url: str = "http://127.0.0.1:8000"
    #: Largest request head (request line and headers) the server reads; beyond it the
    #: connection is answered 431 and closed before the rest is read.
    http_max_header_bytes: Annotated[int, Field(ge=4096, le=1024 * 1024)] = 32 * 1024
    #: A connection that sends nothing (before its first request, or between requests on
    #: keep-alive) is closed after this long. Behind a load balancer that keeps idle
    #: connections open longer, set it above the balancer's idle timeout.
    http_idle_timeout_seconds: Annotated[float, Field(gt=0, le=3600)] = 5.0
    #: A request's line and headers must arrive within this long of their first byte;
    #: otherwise 408 and the connection is closed (a slow-head client holds nothing longer).
    http_head_timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 10.0
    #: A request's body must arrive within this long of its head; otherwise 408 (or a close
    #: when the answer has begun). A one-hour transcript (a few hundred kB) needs far less.
    http_body_timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 30.0
    #: Connections one process holds at once; a connection beyond it is answered 503 (with
    #: Retry-After) and closed. Keep it well below the process's open-file limit: the
    #: database pool, Tavus and the probes need descriptors too.
    http_max_connections: Annotated[int, Field(ge=16, le=1_000_000)] = 1000
    #: When set, `GET /metrics` requires `Authorization: Bearer <METRICS_TOKEN>`. Production
    #: needs it (≥ 32 random characters) unless `/metrics` has a port of its own (below).
    metrics_token: SecretStr | None = None
    #: Serve `/metrics` on this port (bound to `METRICS_HOST`) instead of the public one; 0 =
    #: on the service's own port.
    metrics_port: Annotated[int, Field(ge=0, le=65535)] = 0
    #: Address the metrics port binds to; production needs a private one (Prometheus inside).
    metrics_host: str = "127.0.0.1"
    #: Serve the OpenAPI document (`/openapi.json`). Empty: in development only.
    openapi_enabled: bool | None = None
    #: On SIGTERM `serve` exits within this long (README "Shutdown"): readiness turns 503,
    #: new connections stop, the requests in flight finish (cut when the time is up), the
    #: reconciler releases its leases. Keep it under the platform's kill timeout (Kubernetes:
    #: terminationGracePeriodSeconds minus the preStop sleep; compose: stop_grace_period).
    shutdown_grace_seconds: Annotated[float, Field(gt=0, le=3600)] = 30
    #: Of that, how long `/readyz` answers 503 `draining` while the process still accepts
    #: connections, so a load balancer that polls readiness stops sending first (at most half
    #: the grace).
    shutdown_readiness_delay_seconds: Annotated[float, Field(ge=0, le=600)] = 5

    # --- database -------------------------------------------------------------------------
    #: Empty = the embedded PostgreSQL in `data_dir/postgres` (development and tests only: every
    #: command starts it on demand). Supabase's `postgres://` strings work as given.
    database_url: str = ""
    #: `transaction` when connecting through a transaction pooler (Supavisor :6543, PgBouncer):
    #: disables prepared statements and session state.
    db_pooler_mode: Literal["session", "transaction"] = "session"
    db_pool_size: Annotated[int, Field(ge=1, le=200)] = 10
    db_max_overflow: Annotated[int, Field(ge=0, le=200)] = 5
    db_pool_timeout_seconds: Annotated[float, Field(gt=0)] = 5.0
    #: Longest a request waits for a database slot (pool size + overflow per process) before
    #: it is answered 503 `database_unavailable` with Retry-After (load shedding).
    db_admission_wait_seconds: Annotated[float, Field(gt=0, le=30)] = 2.0
    db_connect_timeout_seconds: Annotated[float, Field(gt=0)] = 5.0
    #: Server-side limit per statement (PostgreSQL); a stuck query must not hold a request.
    db_statement_timeout_ms: Annotated[int, Field(ge=0)] = 8000
    #: Run every transaction under a database role with
    #: row-level security — `authenticated` plus the caller's claims for user requests,
    #: `facetoface_delegate`/`facetoface_service` for the service's own writes for a user/for
    #: nobody (docs/security.md). Needs migration 0016 and a login role that is a member of
    #: all three (`facetoface.db.roles.SWITCHED_DB_ROLES`); off = queries run as the login role.
    db_row_level_security: bool = True

    # --- Tavus ----------------------------------------------------------------------------
    #: Absent in development → the built-in simulator is started and used over HTTP.
    tavus_api_key: SecretStr | None = None
    tavus_base_url: str = "https://tavusapi.com/v2"
    #: The mentor for users without their own: a PAL and/or a Face (Tavus renamed personas
    #: and replicas; the ids are the same). `TAVUS_DEFAULT_PERSONA_ID`/`_REPLICA_ID`, the old
    #: names, still work; the new name wins when both are set.
    tavus_default_pal_id: str = Field(
        default="",
        validation_alias=AliasChoices("tavus_default_pal_id", "tavus_default_persona_id"),
    )
    tavus_default_face_id: str = Field(
        default="",
        validation_alias=AliasChoices("tavus_default_face_id", "tavus_default_replica_id"),
    )
    tavus_connect_timeout_seconds: Annotated[float, Field(gt=0)] = 3.0
    tavus_read_timeout_seconds: Annotated[float, Field(gt=0)] = 10.0
    tavus_total_timeout_seconds: Annotated[float, Field(gt=0)] = 15.0
    tavus_max_concurrent_requests: Annotated[int, Field(ge=1)] = 16
    tavus_retry_attempts: Annotated[int, Field(ge=1, le=10)] = 3
    tavus_retry_timeout_seconds: Annotated[float, Field(gt=0)] = 20.0
    #: Consecutive "Tavus is down" outcomes that open the circuit (starts then fail fast).
    tavus_breaker_threshold: Annotated[int, Field(ge=1)] = 5
    tavus_breaker_cooldown_seconds: Annotated[float, Field(gt=0)] = 15.0
    #: What a client is told to wait when Tavus's concurrency limit is reached.
    tavus_concurrency_retry_after_seconds: Annotated[int, Field(ge=1)] = 30
    #: Port of the embedded simulator `serve` starts when no TAVUS_API_KEY is set (development).
    tavus_sim_port: Annotated[int, Field(ge=0, le=65535)] = 8100
    #: Simulated Tavus latency for the embedded simulator, in milliseconds.
    tavus_sim_latency_ms: Annotated[int, Field(ge=0)] = 0
    #: Names every conversation this deployment creates (`<name>:<installation>:<row>`), so the
    #: reconciler can tell its own conversations from others on a shared Tavus account.
    deployment_name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")] = (
        DEFAULT_DEPLOYMENT_NAME
    )
    #: Tavus memory across a user's conversations: `off`; `participant` (Memory Stores: each
    #: conversation carries `participant_tags: ["<deployment>:<user id>"]`); `legacy` (the
    #: same tag as a legacy `memory_stores` tag). A user can turn it off for themselves.
    tavus_memory: Literal["off", "participant", "legacy"] = "off"
    #: The shared secret of the mentor's tools: Tavus signs each tool call and post-call
    #: action with it (`X-Tavus-Signature`, HMAC-SHA256). Unset outside development: the
    #: tools are off (every call is refused) and `facetoface tavus setup` registers nothing.
    tavus_tool_secret: SecretStr | None = None
    #: Most changes (goal updates, goals added, facts remembered) one session's tools and
    #: report may make; calls beyond it are refused politely.
    tool_changes_per_session: Annotated[int, Field(ge=0, le=100)] = 10
    #: Estimated cost of a billed minute at Tavus (a session report shows it); unset: no estimate.
    tavus_cost_per_minute: Annotated[Decimal | None, Field(ge=0)] = None
    #: How long after a session ended its post-call report is still accepted.
    session_report_window_seconds: Annotated[int, Field(ge=60)] = 24 * 3600

    # --- sessions -------------------------------------------------------------------------
    #: Hard cap of a call at Tavus (Tavus documents 3600 s as the maximum).
    session_max_call_duration_seconds: Annotated[int, Field(ge=60, le=3600)] = 900
    #: Seconds after the user leaves before Tavus shuts the room (stops billing).
    session_participant_left_timeout_seconds: Annotated[int, Field(ge=0, le=3600)] = 30
    #: Seconds Tavus waits for the user to join before shutting the room.
    session_participant_absent_timeout_seconds: Annotated[int, Field(ge=10, le=3600)] = 120
    session_enable_recording: bool = False
    #: Private rooms: conversations are created with `require_auth`, so joining needs the
    #: `meeting_token` only the session's owner is given. Unset: on in production only.
    session_private_rooms: bool | None = None
    session_enable_closed_captions: bool = True
    session_custom_greeting: str = ""
    #: Per-user limit on starts (each one bills): at most this many per window (429 beyond).
    session_start_limit: Annotated[int, Field(ge=1)] = 10
    session_start_limit_window_seconds: Annotated[int, Field(ge=1)] = 3600
    #: Let anonymous sign-ins (`is_anonymous` tokens) start billable sessions.
    allow_anonymous_sessions: bool = False
    #: Browser origins allowed to call the API (CORS). Empty = none outside development; in
    #: development any `http://localhost:*` / `http://127.0.0.1:*` origin is allowed as well.
    #: Origins the console may show in its iframe (the video room). Empty: derived — the
    #: simulator's in development, Tavus's rooms (`https://tavus.daily.co`) with the real API.
    #: A comma-separated list (`https://a.example,https://b.example`) or a JSON list.
    console_frame_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    #: Browser origins allowed to call the API (CORS); empty = no cross-origin access. A
    #: comma-separated list or a JSON list.
    cors_allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    #: Largest request body of the user API (the callback route has its own limit).
    api_max_body_bytes: Annotated[int, Field(ge=1024)] = 64 * 1024
    #: Cap on the context sent to Tavus (its LLM slows beyond ~25k tokens; keep it small).
    context_max_chars: Annotated[int, Field(ge=500, le=50_000)] = 4000
    context_item_max_chars: Annotated[int, Field(ge=20, le=2000)] = 200

    #: How long a completed start is replayed for its `Idempotency-Key`.
    idempotency_key_ttl_seconds: Annotated[int, Field(ge=60)] = 24 * 3600
    #: A retry within this long of the first request (still running) gets 409.
    idempotency_lock_seconds: Annotated[int, Field(ge=5, le=600)] = 60
    #: Largest accepted callback body (a one-hour transcript is a few hundred kB).
    callback_max_body_bytes: Annotated[int, Field(ge=1024)] = 2 * 1024 * 1024

    #: Keep transcripts this many days after a session ended (0 = keep them); the
    #: reconciler clears older ones (and the raw callbacks that carried them).
    transcript_retention_days: Annotated[int, Field(ge=0)] = 0

    # --- reconciler ---
    #: Seconds between reconciler passes inside `serve` (jittered); 0 turns the loop off.
    reconcile_interval_seconds: Annotated[float, Field(ge=0)] = 30
    #: Rows of each kind one pass takes on (the pass's work is bounded).
    reconcile_batch_size: Annotated[int, Field(ge=1, le=1000)] = 50
    #: How long a replica owns a row it claimed.
    reconcile_lease_seconds: Annotated[int, Field(ge=5)] = 120
    #: A `starting` session older than this lost its process between the start's phases.
    reconcile_starting_grace_seconds: Annotated[int, Field(ge=0)] = 60
    #: Grace beyond `SESSION_MAX_CALL_DURATION_SECONDS` before a live session is closed.
    reconcile_overdue_grace_seconds: Annotated[int, Field(ge=0)] = 120
    #: Ask Tavus about a live session we have heard nothing about for this long.
    reconcile_live_check_seconds: Annotated[int, Field(ge=0)] = 300
    #: Wait this long after an end for Tavus's callbacks before fetching what is missing.
    reconcile_settle_seconds: Annotated[int, Field(ge=0)] = 120
    #: Stop fetching a session's missing data from Tavus after this many tries.
    reconcile_max_attempts: Annotated[int, Field(ge=1)] = 5
    #: Pages (of 100) of the account's conversations listed per pass to find ours by name.
    reconcile_list_pages: Annotated[int, Field(ge=1, le=50)] = 5

    # --- the origin's webhook (`POST /functions/v1/tavus-webhook`) ---
    #: Posts per second the unsigned webhook accepts *per conversation of ours* (a token bucket
    #: each, so posts naming unknown conversations, which cost nothing, never use up a real
    #: conversation's share); 429 beyond.
    tavus_webhook_rate_per_second: Annotated[float, Field(gt=0)] = 20.0
    #: How many posts about one conversation may arrive at once before the rate applies.
    tavus_webhook_burst: Annotated[int, Field(ge=1)] = 40
    #: At most one fetch from Tavus per conversation per this many seconds; posts in between
    #: wait for (and share) the next fetch.
    tavus_webhook_fetch_interval_seconds: Annotated[float, Field(ge=0, le=60)] = 2.0
    #: Verbose fetches from Tavus the webhook runs at once per process, over Tavus connections
    #: of their own (a lane apart from the users' starts and ends); beyond, 503 + Retry-After.
    tavus_webhook_max_concurrent_fetches: Annotated[int, Field(ge=1, le=64)] = 2

    #: Signs the callback URLs given to Tavus (an HMAC of the session's row id in the URL),
    #: so a forged callback is refused without a database round trip. At least 32 characters;
    #: required outside development (development derives one). Changing it invalidates the
    #: callback URLs of live sessions (the reconciler then fetches what they miss).
    callback_signing_secret: SecretStr | None = None

    # --- the app's webhooks (webhooks/) ----------------------------------------------------
    #: Where the app receives signed events (`session.started`, `session.ended`, …); empty =
    #: no delivery (events are still recorded, and expire unsent after the retry window).
    app_webhook_url: str = ""
    #: The Standard Webhooks signing secret: `whsec_` and the base64 of 24–64 random bytes.
    app_webhook_secret: SecretStr | None = None
    #: Seconds between delivery passes (jittered); 0 turns the loop off.
    webhook_interval_seconds: Annotated[float, Field(ge=0)] = 2.0
    #: Events one pass claims, and how many are sent at once.
    webhook_batch_size: Annotated[int, Field(ge=1, le=1000)] = 50
    webhook_concurrency: Annotated[int, Field(ge=1, le=64)] = 8
    #: One delivery attempt's time limit (connect, send, answer).
    webhook_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 10.0
    #: How long a replica owns the events it claimed (longer than a batch takes).
    webhook_lease_seconds: Annotated[int, Field(ge=10)] = 120
    #: Backoff after a failed attempt: doubling from the first delay up to the cap, jittered.
    webhook_retry_first_seconds: Annotated[float, Field(gt=0)] = 5.0
    webhook_retry_max_seconds: Annotated[float, Field(gt=0)] = 3600.0
    #: An event not delivered this long after it was recorded (or sent again) is failed.
    webhook_retry_window_seconds: Annotated[int, Field(ge=60)] = 24 * 3600
    #: Delivered and failed events are kept this many days for the operators' console.
    webhook_retention_days: Annotated[int, Field(ge=1)] = 7

    # --- authentication -------------------------------------------------------------------
    #: The Supabase project URL; issuer = `<url>/auth/v1`, JWKS = issuer + `/.well-known/jwks.json`.
    supabase_url: str = ""
    #: Legacy HS256 secret (Supabase "JWT secret"). In development defaults to the dev issuer's.
    supabase_jwt_secret: SecretStr | None = None
    #: Accepted so a Supabase `.env` can be used unchanged; this service never needs them
    #: (it never calls Supabase's APIs, and refuses these keys as user tokens).
    supabase_anon_key: SecretStr | None = None
    supabase_service_role_key: SecretStr | None = None
    jwt_audience: str = "authenticated"
    jwt_leeway_seconds: Annotated[int, Field(ge=0, le=300)] = 30
    jwks_cache_seconds: Annotated[int, Field(ge=10)] = 300
    #: At most one JWKS fetch per this many seconds for tokens whose `kid` is unknown.
    jwks_refetch_cooldown_seconds: Annotated[int, Field(ge=1)] = 30
    jwks_fetch_timeout_seconds: Annotated[float, Field(gt=0)] = 3.0
    #: Lifetime of tokens minted by `facetoface token` (development issuer).
    dev_token_ttl_seconds: Annotated[int, Field(ge=60)] = 3600

    @field_validator("public_base_url", "supabase_url", "tavus_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("cors_allowed_origins", "console_frame_origins", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        """A JSON list as given, or the comma-separated form people write."""
        if not isinstance(value, str):
            return value
        if value.strip().startswith("["):
            import json

            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not a JSON list ({exc.msg})") from exc
        return [item.strip() for item in value.split(",") if item.strip()]

    # --- derived --------------------------------------------------------------------------
    @property
    def is_development(self) -> bool:
        return self.environment is Environment.development

    @property
    def effective_log_format(self) -> str:
        """`LOG_FORMAT`, or by environment: `console` for people in development, else `json`."""
        return self.log_format or ("console" if self.is_development else "json")

    @property
    def serves_openapi(self) -> bool:
        return self.is_development if self.openapi_enabled is None else self.openapi_enabled

    @property
    def private_rooms(self) -> bool:
        """Whether conversations are created as private rooms (`SESSION_PRIVATE_ROOMS`)."""
        if self.session_private_rooms is not None:
            return self.session_private_rooms
        return self.environment is Environment.production

    @property
    def cors_origin_regex(self) -> str | None:
        """Origins allowed besides the configured list: local dev servers, in development only."""
        if self.is_development:
            return r"http://(localhost|127\.0\.0\.1)(:[0-9]{1,5})?"
        return None

    @property
    def uses_simulator(self) -> bool:
        """True when no Tavus key is configured: development talks to the built-in simulator."""
        return self.tavus_api_key is None and self.environment is not Environment.production

    @property
    def effective_tavus_base_url(self) -> str:
        if self.uses_simulator and self.tavus_base_url == "https://tavusapi.com/v2":
            return f"http://127.0.0.1:{self.tavus_sim_port}/v2"
        return self.tavus_base_url

    @property
    def effective_tavus_api_key(self) -> str:
        if self.tavus_api_key is not None:
            return self.tavus_api_key.get_secret_value()
        return SIM_API_KEY

    @property
    def default_persona_id(self) -> str | None:
        """The default mentor's PAL (persona) id, if any."""
        if self.tavus_default_pal_id:
            return self.tavus_default_pal_id
        return DEV_PERSONA_ID if self.uses_simulator else None

    @property
    def default_replica_id(self) -> str | None:
        """The default mentor's Face (replica) id, if any."""
        if self.tavus_default_face_id:
            return self.tavus_default_face_id
        return DEV_REPLICA_ID if self.uses_simulator else None

    @property
    def tool_secret(self) -> str | None:
        """The tools' signing secret: `TAVUS_TOOL_SECRET`, else the published development one
        (in development only, like the development token secret); None: the tools are off."""
        if self.tavus_tool_secret is not None:
            return self.tavus_tool_secret.get_secret_value() or None
        return DEV_TOOL_SECRET if self.is_development else None

    @property
    def jwt_issuer(self) -> str:
        """`<SUPABASE_URL>/auth/v1`; without a Supabase project, the constant local issuer."""
        return f"{self.supabase_url}/auth/v1" if self.supabase_url else LOCAL_ISSUER

    @property
    def jwks_url(self) -> str | None:
        return f"{self.jwt_issuer}/.well-known/jwks.json" if self.supabase_url else None

    @property
    def hs256_secret(self) -> str | None:
        if self.supabase_jwt_secret is not None:
            return self.supabase_jwt_secret.get_secret_value()
        # The published secret signs tokens nowhere but on a developer's machine.
        return DEV_JWT_SECRET if self.is_development else None

    @property
    def callback_signing_key(self) -> bytes:
        """The key of the callback URLs' MACs: `CALLBACK_SIGNING_SECRET`, or in development
        only, one derived from the published development secret and the deployment's name."""
        if self.callback_signing_secret is not None:
            return self.callback_signing_secret.get_secret_value().encode()
        if self.is_development:
            material = f"{DEV_JWT_SECRET}:callbacks:{self.deployment_name}".encode()
            return hashlib.sha256(material).digest()
        raise ConfigurationError(
            "CALLBACK_SIGNING_SECRET is not set (required outside development: at least 32 "
            "random characters, e.g. `openssl rand -base64 48`)"
        )

    @property
    def sqlalchemy_url(self) -> str:
        """The async SQLAlchemy URL for `database_url`."""
        if not self.database_url:
            raise ConfigurationError(
                "DATABASE_URL is not set: commands start the embedded PostgreSQL and fill it in "
                "(facetoface.db.embedded); anything else must name its database"
            )
        return normalize_database_url(self.database_url)

    @property
    def webhooks_enabled(self) -> bool:
        """Events are delivered to the app (`APP_WEBHOOK_URL` is set)."""
        return bool(self.app_webhook_url)

    @property
    def app_webhook_signing_key(self) -> bytes | None:
        """The secret's key bytes (`APP_WEBHOOK_SECRET` without `whsec_`, decoded)."""
        if self.app_webhook_secret is None:
            return None
        return webhook_signing_key(self.app_webhook_secret.get_secret_value())

    def webhook_problems(self) -> list[str]:
        """What is wrong with the webhook settings, in every environment (never a value: the
        secret is one)."""
        problems: list[str] = []
        url = self.app_webhook_url
        if url:
            parts = urlsplit(url)
            if parts.scheme not in {"https", "http"} or not parts.hostname:
                problems.append("APP_WEBHOOK_URL must be an http(s) URL with a host")
            elif parts.scheme != "https" and self.environment is Environment.production:
                problems.append("APP_WEBHOOK_URL must be https:// in production")
            if self.app_webhook_secret is None:
                problems.append(
                    "APP_WEBHOOK_SECRET is required with APP_WEBHOOK_URL (whsec_ and the "
                    "base64 of 24-64 random bytes)"
                )
        elif self.app_webhook_secret is not None:
            problems.append("APP_WEBHOOK_SECRET is set but APP_WEBHOOK_URL is not")
        if self.app_webhook_secret is not None:
            try:
                self.app_webhook_signing_key  # noqa: B018 - parses the secret
            except ValueError as exc:
                problems.append(f"APP_WEBHOOK_SECRET {exc}")
        return problems

    def check_production_ready(self) -> None:
        """Refuse to run outside development with missing, published or unsafe settings (and,
        in every environment, with webhook settings that cannot work): one line, each problem
        naming its variable and what to set."""
        webhooks = self.webhook_problems()
        if webhooks:
            raise ConfigurationError("refusing to start: " + "; ".join(webhooks))
        problems = self.production_problems()
        if problems:
            raise ConfigurationError(
                f"refusing to start in {self.environment.value} mode: " + "; ".join(problems)
            )

    def production_problems(self) -> list[str]:
        """What `check_production_ready` refuses, one sentence per problem (empty: none)."""
        if self.is_development:
            return []
        problems: list[str] = []
        secret = self.supabase_jwt_secret
        if secret is not None:
            value = secret.get_secret_value()
            if value == DEV_JWT_SECRET:
                problems.append(
                    "SUPABASE_JWT_SECRET is the development issuer's published secret (works "
                    "with ENVIRONMENT=development only): set your project's JWT secret"
                )
            elif len(value) < MIN_SECRET_CHARS:
                problems.append(
                    "SUPABASE_JWT_SECRET is shorter than 32 characters: set your project's "
                    "JWT secret"
                )
        signing = self.callback_signing_secret
        if signing is None or len(signing.get_secret_value()) < MIN_SECRET_CHARS:
            problems.append(
                "CALLBACK_SIGNING_SECRET must be set to at least 32 random characters (it signs "
                "the callback URLs given to Tavus; e.g. `openssl rand -base64 48`)"
            )
        tool_secret = self.tavus_tool_secret
        if tool_secret is not None:
            value = tool_secret.get_secret_value()
            if value == DEV_TOOL_SECRET or len(value) < MIN_SECRET_CHARS:
                problems.append(
                    "TAVUS_TOOL_SECRET is the development default or shorter than 32 "
                    "characters: set a random one (e.g. `openssl rand -hex 32`)"
                )
        if "*" in self.cors_allowed_origins:
            problems.append(
                "CORS_ALLOWED_ORIGINS must list origins, not '*' (e.g. https://app.example.com)"
            )
        if self.environment is Environment.production:
            problems += self._production_only_problems()
        return problems

    def _production_only_problems(self) -> list[str]:
        problems: list[str] = []
        if self.tavus_api_key is None:
            problems.append("TAVUS_API_KEY is not set (the simulator is for development)")
        elif self.tavus_api_key.get_secret_value() == SIM_API_KEY:
            problems.append(
                "TAVUS_API_KEY is the simulator's key: set your Tavus API key "
                "(platform.tavus.io → API keys)"
            )
        if not (self.tavus_base_url.startswith("https://") or is_loopback_url(self.tavus_base_url)):
            problems.append(
                "TAVUS_BASE_URL must be https:// (the API key travels in every request) unless "
                "it is on this machine: unset it for https://tavusapi.com/v2"
            )
        if not (self.default_persona_id or self.default_replica_id):
            problems.append("set TAVUS_DEFAULT_PAL_ID and/or TAVUS_DEFAULT_FACE_ID")
        if not self.supabase_url:
            problems.append("SUPABASE_URL is not set (token issuer and JWKS derive from it)")
        if not self.database_url:
            problems.append("DATABASE_URL is not set (the embedded PostgreSQL is for development)")
        public_host = urlsplit(self.public_base_url).hostname or ""
        if public_host and _is_private_host(public_host):
            problems.append(
                f"PUBLIC_BASE_URL names a private address ({public_host}) Tavus "
                "cannot reach: set the service's public https address, e.g. "
                "https://api.example.com"
            )
        elif not self.public_base_url.startswith("https://"):
            problems.append(
                "PUBLIC_BASE_URL must be https:// (callback URLs carry secret tokens), e.g. "
                "https://api.example.com"
            )
        if self.supabase_url and not (
            self.supabase_url.startswith("https://") or is_loopback_url(self.supabase_url)
        ):
            problems.append(
                "SUPABASE_URL must be https:// (the signing keys are fetched from it) unless "
                "it is on this machine (a local Supabase stack)"
            )
        if self.deployment_name == DEFAULT_DEPLOYMENT_NAME:
            problems.append(
                "DEPLOYMENT_NAME is the default: name this deployment (e.g. `acme-prod`), so "
                "conversations at Tavus say whose they are"
            )
        bad_origins = [
            origin
            for origin in self.cors_allowed_origins
            if origin.lower() == "null" or origin.lower().startswith("http://")
        ]
        if bad_origins:
            problems.append(
                f"CORS_ALLOWED_ORIGINS has {', '.join(bad_origins)}: only https origins "
                "(`null` is any sandboxed page), e.g. https://app.example.com"
            )
        if not self.db_row_level_security:
            problems.append(
                "DB_ROW_LEVEL_SECURITY=false turns row-level security off for every query: "
                "unset it (it defaults to true)"
            )
        problems += self._metrics_problems()
        return problems

    def _metrics_problems(self) -> list[str]:
        """`/metrics` shows every route's traffic: never to the internet unauthenticated."""
        token = self.metrics_token.get_secret_value() if self.metrics_token else None
        if token is not None and not _strong_secret(token):
            return [
                f"METRICS_TOKEN is weak: use at least {MIN_SECRET_CHARS} random "
                "characters (e.g. the output of `openssl rand -hex 32`)"
            ]
        if self.metrics_port:
            if not _is_private_host(self.metrics_host) or self.metrics_host in ("0.0.0.0", "::"):
                return [
                    f"METRICS_HOST {self.metrics_host} is not a private address: bind the "
                    "metrics port inside your network (e.g. METRICS_HOST=10.0.0.5) or set "
                    "METRICS_TOKEN"
                ]
            return []
        if token is None:
            return [
                "METRICS_TOKEN is not set, so /metrics would be public: set one "
                "(`openssl rand -hex 32`) or serve it on a private METRICS_PORT"
            ]
        return []


#: Standard Webhooks secrets: this prefix, then the key in base64.
WEBHOOK_SECRET_PREFIX = "whsec_"


def webhook_signing_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret (`whsec_<base64>`); ValueError (saying what is
    wrong, never the value) when it is not one."""
    import base64
    import binascii

    if not secret.startswith(WEBHOOK_SECRET_PREFIX):
        raise ValueError("must start with whsec_ (a Standard Webhooks secret)")
    try:
        key = base64.b64decode(secret.removeprefix(WEBHOOK_SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("is not whsec_ followed by base64") from None
    if not 24 <= len(key) <= 64:
        raise ValueError("must hold 24 to 64 random bytes (e.g. whsec_ + base64 of 32 bytes)")
    return key


def normalize_database_url(url: str) -> str:
    """Turn what operators paste (Supabase's `postgres://…`) into an async URL."""
    scheme, _, rest = url.partition("://")
    scheme = scheme.lower()
    if scheme in {"postgres", "postgresql", "postgresql+asyncpg", "postgresql+psycopg"}:
        parts = urlsplit("postgresql+psycopg://" + rest)
        # psycopg is libpq: `sslmode` and the other libpq options pass through; an `ssl=`
        # (asyncpg's spelling, from older configurations) becomes `sslmode`.
        query = [(k, v) for k, v in parse_qsl(parts.query) if k != "ssl"]
        ssl = dict(parse_qsl(parts.query)).get("ssl")
        if ssl and "sslmode" not in dict(query):
            query.append(("sslmode", ssl))
        return urlunsplit(parts._replace(query=urlencode(query)))
    raise ConfigurationError(f"DATABASE_URL scheme {scheme!r} is not supported")


#: Examples for variables whose default does not show what a value looks like.
_EXAMPLES = {
    "database_url": "postgresql://facetoface_app:secret@db.example.com:5432/postgres",
    "cors_allowed_origins": "https://a.example,https://b.example",
    "console_frame_origins": "https://tavus.daily.co",
    "public_base_url": "https://api.example.com",
    "supabase_url": "https://yourproject.supabase.co",
    "tavus_api_key": "tvsk_…",
    "metrics_token": "$(openssl rand -hex 32)",
    "session_private_rooms": "true",
    "openapi_enabled": "false",
}


def _example(name: str) -> str:
    """`NAME=value` showing a valid value of setting `name`."""
    if name in _EXAMPLES:
        value = _EXAMPLES[name]
    else:
        info = Settings.model_fields[name]
        default = info.get_default(call_default_factory=True)
        if isinstance(default, bool):
            value = str(default).lower()
        elif isinstance(default, StrEnum):
            value = default.value
        elif default is None or default == "":
            value = "…"
        else:
            value = str(default)
    return f"{name.upper()}={value}"


def describe_settings_error(exc: ValidationError, *, show_values: bool = True) -> str:
    """A settings validation error as one line: per variable, what is wrong and an example
    (the value given too, unless `show_values` is off; never a secret's)."""
    parts = []
    for error in exc.errors(include_url=False):
        name = str(error["loc"][0]) if error["loc"] else ""
        given = error.get("input")
        secret = any(word in name for word in ("key", "secret", "token", "database_url"))
        hidden = secret or not show_values or isinstance(given, dict)
        shown = "" if hidden else f" {str(given)[:60]!r}"
        message = error["msg"].removeprefix("Value error, ")
        if name in Settings.model_fields:
            parts.append(
                f"{name.upper()}{shown}: {message[:160]} (e.g. {_example(name)})".replace("\n", " ")
            )
        else:
            parts.append(message.replace("\n", " "))
    return "; ".join(parts)


def get_settings() -> Settings:
    """Read settings from the environment now (not cached: tests and the CLI build their own).
    An unreadable value is a `ConfigurationError` of one line naming the variable."""
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigurationError(describe_settings_error(exc)) from None
    except SettingsError as exc:  # a value pydantic-settings could not even decode
        raise ConfigurationError(str(exc).replace("\n", " ")) from None
