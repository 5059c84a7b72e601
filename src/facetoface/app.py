"""The application factory and its lifespan: every pooled resource is made and closed here."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import structlog
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from facetoface import __version__
from facetoface.apidocs import install_api_docs
from facetoface.app_state import AppState
from facetoface.auth.jwks import JwksCache
from facetoface.auth.tokens import TokenVerifier
from facetoface.callbacks.endpoints import CALLBACKS_PREFIX
from facetoface.callbacks.endpoints import router as callbacks_router
from facetoface.callbacks.service import CallbackService
from facetoface.compat.endpoints import WEBHOOK_PATH
from facetoface.compat.endpoints import router as compat_router
from facetoface.compat.errors import ORIGIN_PREFIX, render_origin_error
from facetoface.compat.service import CompatService
from facetoface.config import ConfigurationError, Settings
from facetoface.console.endpoints import install_console
from facetoface.console.ops.endpoints import router as ops_router
from facetoface.console.ops.service import OpsService
from facetoface.console.service import ConsoleService
from facetoface.conversations.events import KNOWN as KNOWN_EVENT_TYPES
from facetoface.conversations.names import installation_id
from facetoface.conversations.recent import RecentConversations
from facetoface.conversations.service import ConversationService
from facetoface.conversations.status import CallbackOutcome, FailureCode
from facetoface.db import Database
from facetoface.db.failures import UNAVAILABLE_REASONS
from facetoface.errors import install_error_handlers
from facetoface.health import TavusHealth
from facetoface.health import router as health_router
from facetoface.limits import BodyDeadlineMiddleware, BodyLimitMiddleware
from facetoface.models import Base
from facetoface.observability.loop_lag import sample_loop_lag
from facetoface.observability.metrics import (
    LabelSets,
    configure_labels,
    instrument_engine,
    record_tavus_request,
)
from facetoface.observability.middleware import RequestContextMiddleware
from facetoface.preferences.endpoints import router as preferences_router
from facetoface.preferences.repository import PreferencesRepository
from facetoface.preferences.service import PreferencesService
from facetoface.reconcile.service import Reconciler
from facetoface.sessions.data_rights import DataRights
from facetoface.sessions.endpoints import me_router
from facetoface.sessions.endpoints import router as sessions_router
from facetoface.sessions.repository import SessionRepository
from facetoface.sessions.service import SessionService
from facetoface.shutdown import Shutdown, install_sigterm_drain, tavus_cutoff
from facetoface.tavus import OnRequest, TavusClient
from facetoface.tools.change_log import GoalChangeLog
from facetoface.tools.endpoints import me_router as tools_me_router
from facetoface.tools.endpoints import tavus_router as tools_tavus_router
from facetoface.tools.memory import MemoryService
from facetoface.tools.service import MentorActions
from facetoface.webhooks.endpoints import router as webhooks_router
from facetoface.webhooks.service import WebhookDelivery

log = structlog.get_logger(__name__)

#: How long stopping waits for the reconciler's pass to finish the row it is on.
RECONCILER_STOP_SECONDS = 1.5


#: Request headers a browser may send cross-origin: ours, and every header supabase-js sends
#: (its own list, `@supabase/supabase-js/cors`), so `functions.invoke` passes the preflight.
#: `apikey` is accepted and ignored: the caller is only ever the bearer token's user.
CORS_ALLOWED_HEADERS = [
    "authorization",
    "content-type",
    "idempotency-key",
    "x-request-id",
    "x-client-info",
    "apikey",
    "x-retry-count",
    "traceparent",
    "tracestate",
    "baggage",
]


class UnmigratedDatabase(ConfigurationError):
    """The database schema is not at the code's migration head."""


async def check_migrations(db: Database) -> None:
    """Refuse to serve on a database this code may not run on (README "Upgrading"): one
    behind its head, or ahead by a revision not marked backward-compatible."""
    verdict = await db.schema_verdict()
    if not verdict.serves:
        raise UnmigratedDatabase(verdict.message)
    if verdict.current != verdict.head:
        log.warning("app.schema_ahead", current=verdict.current, head=verdict.head)


def build_token_verifier(settings: Settings, http: httpx.AsyncClient | None) -> TokenVerifier:
    """The access-token verifier; `http` fetches the JWKS (None: HS256 only, for commands)."""
    jwks = None
    if settings.jwks_url and http is not None:
        jwks = JwksCache(
            settings.jwks_url,
            client=http,
            cache_seconds=settings.jwks_cache_seconds,
            cooldown_seconds=settings.jwks_refetch_cooldown_seconds,
        )
    return TokenVerifier(
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        hs256_secret=settings.hs256_secret,
        jwks=jwks,
        leeway_seconds=settings.jwt_leeway_seconds,
    )


def build_tavus_client(
    settings: Settings,
    on_request: OnRequest = record_tavus_request,
    *,
    max_concurrency: int | None = None,
    bulkhead_timeout_s: float | None = None,
) -> TavusClient:
    """A Tavus client as `settings` say; `max_concurrency` (its bulkhead) defaults to
    `TAVUS_MAX_CONCURRENT_REQUESTS`."""
    return TavusClient(
        settings.effective_tavus_base_url,
        settings.effective_tavus_api_key,
        connect_timeout_s=settings.tavus_connect_timeout_seconds,
        read_timeout_s=settings.tavus_read_timeout_seconds,
        total_timeout_s=settings.tavus_total_timeout_seconds,
        max_concurrency=max_concurrency or settings.tavus_max_concurrent_requests,
        bulkhead_timeout_s=bulkhead_timeout_s,
        retry_attempts=settings.tavus_retry_attempts,
        retry_timeout_s=settings.tavus_retry_timeout_seconds,
        concurrency_retry_after_s=settings.tavus_concurrency_retry_after_seconds,
        breaker_threshold=settings.tavus_breaker_threshold,
        breaker_cooldown_s=settings.tavus_breaker_cooldown_seconds,
        on_request=on_request,
    )


async def build_state(
    settings: Settings,
    db: Database,
    tavus: TavusClient,
    *,
    tavus_health: TavusHealth | None = None,
    token_verifier: TokenVerifier | None = None,
    shutdown: Shutdown | None = None,
) -> AppState:
    """Wire every service over `db` and `tavus`, once: the app's lifespan and the CLI's
    commands use the same wiring (reads this database's installation id)."""
    async with db.transaction(role="service") as session:
        installation = await installation_id(session)
    tavus_health = tavus_health or TavusHealth()
    conversations = ConversationService(db, tavus)
    # Which conversations may still hear from Tavus, in memory: unsigned posts naming others
    # cost no database work (the callbacks' older URLs, the origin's webhook).
    recent = RecentConversations(db)
    sessions = SessionService(settings, SessionRepository(db), conversations, tavus, installation)
    memory = MemoryService(settings, db, tavus)
    return AppState(
        settings=settings,
        db=db,
        tavus=tavus,
        tavus_health=tavus_health,
        token_verifier=token_verifier or build_token_verifier(settings, None),
        installation_id=installation,
        conversations=conversations,
        sessions=sessions,
        data_rights=DataRights(settings, db, tavus, sessions),
        callbacks=CallbackService(conversations, settings=settings, recent=recent),
        preferences=PreferencesService(PreferencesRepository(db)),
        reconciler=Reconciler(settings, db, tavus, conversations, installation),
        compat=CompatService(
            settings,
            db,
            sessions,
            conversations,
            recent=recent,
            tavus_lane=build_tavus_client(
                settings,
                max_concurrency=settings.tavus_webhook_max_concurrent_fetches,
                # A full lane answers 503 at once: a post waits for no one's fetch.
                bulkhead_timeout_s=0.05,
            ),
        ),
        ops=OpsService(settings, db, tavus, sessions, tavus_health),
        console=ConsoleService(settings, db),
        webhooks=WebhookDelivery(settings, db),
        mentor_actions=MentorActions(settings, db, memory),
        goal_changes=GoalChangeLog(db),
        memory=memory,
        shutdown=shutdown or Shutdown(),
    )


def create_app_from_environment() -> FastAPI:
    """The app of one `serve --workers N` worker: settings and logging from the environment."""
    from facetoface.config import get_settings
    from facetoface.observability.logging import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level, settings.effective_log_format)
    return create_app(settings, freeze_heap=True, drain_on_sigterm=True)


def metric_labels() -> LabelSets:
    """The label sets the metrics take from the layers above them."""
    return LabelSets(
        tables=frozenset({*Base.metadata.tables, "alembic_version"}),
        event_types=frozenset(KNOWN_EVENT_TYPES),
        callback_outcomes=frozenset(CallbackOutcome),
        start_failure_reasons=frozenset(FailureCode),
        db_unavailable_reasons=UNAVAILABLE_REASONS,
    )


def create_app(
    settings: Settings, *, freeze_heap: bool = False, drain_on_sigterm: bool = False
) -> FastAPI:
    """Build the service. Nothing connects until the lifespan starts.

    `freeze_heap` (the server process's own app, not tests that build many): once started,
    move every object to the collector's permanent generation (`gc.freeze`).
    `drain_on_sigterm` (the server process's own app): SIGTERM drains (`facetoface.shutdown`).
    """
    shutdown = Shutdown()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.check_production_ready()
        db = Database(settings)
        instrument_engine(db.engine)
        auth_http = httpx.AsyncClient(
            timeout=settings.jwks_fetch_timeout_seconds, follow_redirects=False
        )
        tavus_health = TavusHealth()
        tavus = build_tavus_client(settings, on_request=tavus_health.on_request)
        reconcile_task: asyncio.Task[None] | None = None
        lag_task: asyncio.Task[None] | None = None
        webhook_task: asyncio.Task[None] | None = None
        state: AppState | None = None
        try:
            await check_migrations(db)
            state = await build_state(
                settings,
                db,
                tavus,
                tavus_health=tavus_health,
                token_verifier=build_token_verifier(settings, auth_http),
                shutdown=shutdown,
            )
            app.state.services = state
            if settings.reconcile_interval_seconds > 0:
                reconcile_task = asyncio.create_task(state.reconciler.run_forever())
            # Every replica runs it (delivery where APP_WEBHOOK_URL is set; expiry anywhere).
            if settings.webhook_interval_seconds > 0:
                webhook_task = asyncio.create_task(state.webhooks.run_forever())
            shutdown.on_drain(state.reconciler.stop)
            loop = asyncio.get_running_loop()
            shutdown.on_drain(lambda: tavus.cut_off_at(loop.time() + tavus_cutoff(settings)))
            if drain_on_sigterm:
                install_sigterm_drain(shutdown, settings)
            lag_task = asyncio.create_task(sample_loop_lag())
            if freeze_heap:
                # What startup built lives as long as the process: frozen, a full collection
                # no longer walks it. Measured (make bench, open loop at 50 starts/s): start
                # overhead p99 35-38 ms without, 12-16 ms with.
                gc.collect()
                gc.freeze()
            log.info(
                "app.started",
                environment=settings.environment.value,
                tavus="simulator" if settings.uses_simulator else "tavus",
            )
            yield
        finally:
            if webhook_task is not None:
                # An attempt cut short keeps its lease until it expires; the event is sent
                # again then, with the same id (receivers dedupe).
                webhook_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await webhook_task
            if state is not None and reconcile_task is not None:
                # The pass in progress finishes its row and releases the rest of its leases;
                # one stuck on a call is cancelled (and still releases them).
                state.reconciler.stop()
                try:
                    await asyncio.wait_for(reconcile_task, RECONCILER_STOP_SECONDS)
                except TimeoutError:
                    reconcile_task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await reconcile_task
            if lag_task is not None:
                lag_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await lag_task
            if state is not None:
                await state.compat.aclose()
                await state.webhooks.aclose()
            await tavus.aclose()
            await auth_http.aclose()
            await db.dispose()

    app = FastAPI(
        title="facetoface",
        version=__version__,
        summary="AI video mentor sessions on Tavus CVI",
        lifespan=lifespan,
        docs_url=None,  # served from packaged assets, below
        redoc_url=None,
        # The API's map is for developers: off outside development unless OPENAPI_ENABLED.
        openapi_url="/openapi.json" if settings.serves_openapi else None,
    )
    app.state.settings = settings
    configure_labels(metric_labels())
    install_error_handlers(app)
    app.add_middleware(
        BodyLimitMiddleware,
        default_limit=settings.api_max_body_bytes,
        callback_limit=settings.callback_max_body_bytes,
        # The routes that receive Tavus's events (transcripts) take the larger limit.
        callback_paths=(CALLBACKS_PREFIX, WEBHOOK_PATH),
        renderers={ORIGIN_PREFIX: render_origin_error},
    )
    # Outside the size limit (which reads chunked bodies itself), inside the request context
    # (so a 408 is logged and counted like any answer).
    app.add_middleware(BodyDeadlineMiddleware, seconds=settings.http_body_timeout_seconds)
    if settings.cors_allowed_origins or settings.cors_origin_regex:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_allowed_origins,
            # Development only: any local dev server (`http://localhost:*`, 127.0.0.1).
            allow_origin_regex=settings.cors_origin_regex,
            allow_credentials=False,  # bearer tokens travel in a header, never in cookies
            allow_methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"],
            allow_headers=CORS_ALLOWED_HEADERS,
            expose_headers=["X-Request-ID", "Retry-After", "Idempotent-Replayed"],
            max_age=600,
        )
    app.add_middleware(RequestContextMiddleware)
    app.include_router(sessions_router)
    app.include_router(callbacks_router)
    app.include_router(compat_router)
    app.include_router(me_router)
    app.include_router(preferences_router)
    app.include_router(tools_tavus_router)
    app.include_router(tools_me_router)
    app.include_router(health_router)
    app.include_router(ops_router)
    app.include_router(webhooks_router)
    install_console(app, settings)
    if settings.is_development and settings.serves_openapi:
        install_api_docs(app)
    return app
