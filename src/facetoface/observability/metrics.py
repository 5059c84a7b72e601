"""Every Prometheus metric of the service, declared here and only here (hence its length:
one file is the whole list, with the label bounds and the SQL-operation labeller).

| name | type | labels | meaning |
|---|---|---|---|
| facetoface_http_requests_total | counter | method, route, status | requests answered |
| facetoface_http_request_duration_seconds | histogram | method, route | until response end |
| facetoface_http_requests_in_progress | gauge, livesum | | being served now |
| facetoface_http_connections_refused_total | counter | reason | refused by the server itself |
| facetoface_db_query_duration_seconds | histogram | operation | one statement |
| facetoface_db_errors_total | counter | kind | driver errors |
| facetoface_db_unavailable_total | counter | reason | database calls answered 503 |
| facetoface_db_stale_connections_total | counter | | dead pooled connections replaced |
| facetoface_tavus_requests_total | counter | endpoint, outcome | attempts (retries count) |
| facetoface_tavus_request_duration_seconds | histogram | endpoint, outcome | one attempt |
| facetoface_sessions_started_total | counter | | Tavus created the conversation |
| facetoface_session_start_failures_total | counter | reason | rows written, no session |
| facetoface_sessions_ended_total | counter | shutdown_reason | live sessions that ended |
| facetoface_callbacks_total | counter | event_type, outcome | callbacks stored (2xx) |
| facetoface_reconciler_actions_total | counter | action | reconciler actions |
| facetoface_tool_calls_total | counter | outcome | the mentor's tool calls and reports |
| facetoface_event_loop_lag_seconds | histogram | | how late the event loop ran a timer |
| facetoface_live_sessions | gauge, on scrape | | live sessions in the database |
| facetoface_sessions_past_max_duration | gauge, on scrape | | live past the call cap + grace |
| facetoface_webhook_deliveries_total | counter | outcome | app webhook attempts and give-ups |
| facetoface_webhook_outbox_pending | gauge, on scrape | | events not yet delivered |
| facetoface_webhook_outbox_oldest_due_seconds | gauge, on scrape | | oldest due one waited |
| facetoface_webhook_events_failed | gauge, on scrape | | events given up on (kept) |

`route` is the route template, `<unmatched>` when no route matched; `operation` is
`<verb>:<main table>` (`select:daily_sessions`, `update:mentor_conversations`); `kind` is
`connect` (no connection could be opened), `disconnect`, `timeout`, `integrity` (expected:
the one-live-session index answers 409s), `operational`, `interface`, `programming`, `data`,
`internal` or `other`.

Label values are bounded: never a raw path (callback paths carry secret tokens) and never an
id; methods, DB tables, Tavus endpoints and outcomes, shutdown reasons and callback event types
are mapped onto fixed sets with `other` for the rest. `/metrics`, `/healthz` and `/readyz`
are not counted.

`outcome` of a webhook delivery: `delivered` (2xx), `retrying` (an attempt failed; another
follows), `failed` (given up: the retry window is over, or the app answered 410), `lease_lost`
(another replica took the event over). The webhook gauges are counted at scrape time like the
session gauges, and only where `APP_WEBHOOK_URL` is set.

`reason` of a start failure: the session row's `failure_code` (`tavus_concurrency_limit`,
`tavus_rate_limited`, `tavus_out_of_credits`, `tavus_auth_failed`, `tavus_rejected`,
`tavus_server_error`, `tavus_unavailable`, `tavus_outcome_unknown`) or `database_unavailable`
(Tavus created it but we could not record it; it was ended again). Refusals before any row is
written (401, 404, 403, 409) are not attempts; they show in the HTTP metrics.

Several worker processes: if `PROMETHEUS_MULTIPROC_DIR` is set when the process starts (before
`prometheus_client` is imported), every process writes its samples to files there and
`/metrics` merges them with `MultiProcessCollector`, so any worker's scrape is the whole
service. The directory must be emptied before the workers start. The two session gauges are
not kept in processes at all: they are counted in the database when `/metrics` is scraped
(one indexed query), so every worker and every replica reports the same true value — take
`max()` of them across instances, never `sum()`.
"""

from __future__ import annotations

import functools
import os
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import REGISTRY, Collector
from sqlalchemy import event
from sqlalchemy.engine import Connection, Dialect, Engine, ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine

from facetoface.observability import timing

__all__ = [
    "DB_QUERY_DURATION",
    "EVENT_LOOP_LAG",
    "UNMATCHED_ROUTE",
    "UNTRACKED_ROUTES",
    "callback_event_type",
    "db_error_kind",
    "instrument_engine",
    "multiprocess_dir",
    "observe_http_request",
    "record_callback",
    "record_reconciler_action",
    "record_session_ended",
    "record_session_started",
    "record_start_failure",
    "record_tavus_request",
    "record_webhook_delivery",
    "render_metrics",
    "session_gauges",
    "webhook_gauges",
    "shutdown_reason_label",
    "sql_operation",
]

# `_created` series double the output and no alert or panel uses them.
disable_created_metrics()  # type: ignore[no-untyped-call]

# --- HTTP --------------------------------------------------------------------------------
UNMATCHED_ROUTE = "<unmatched>"
#: Probes and the scrape itself: counting them would drown the real traffic.
UNTRACKED_ROUTES = frozenset({"/metrics", "/healthz", "/readyz"})
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# A start waits for Tavus's create (seconds, with retries up to ~35 s in the worst case).
_HTTP_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0)

HTTP_REQUESTS = Counter(
    "facetoface_http_requests_total",
    "HTTP requests answered, by route template and status.",
    ["method", "route", "status"],
)
#: Why the server itself (`http_protocol`) refused a connection or request the app never saw.
_REFUSAL_REASONS = frozenset({"too_many_connections", "head_too_large", "head_timeout"})
HTTP_REFUSED = Counter(
    "facetoface_http_connections_refused_total",
    "Connections or requests the server refused before the app saw them, by reason.",
    ["reason"],
)
HTTP_DURATION = Histogram(
    "facetoface_http_request_duration_seconds",
    "Time from request start until the response ended, by route template.",
    ["method", "route"],
    buckets=_HTTP_BUCKETS,
)
HTTP_IN_PROGRESS = Gauge(
    "facetoface_http_requests_in_progress",
    "Requests being served now (summed over live worker processes).",
    multiprocess_mode="livesum",
)

# --- the event loop ----------------------------------------------------------------------
#: Every request of a worker waits for its one event loop: lag here is latency everywhere
#: (observability/loop_lag.py samples it).
EVENT_LOOP_LAG = Histogram(
    "facetoface_event_loop_lag_seconds",
    "How late the event loop woke a timer: time every request waited for CPU-bound work.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)

# --- database ----------------------------------------------------------------------------
DB_QUERY_DURATION = Histogram(
    "facetoface_db_query_duration_seconds",
    "One statement's round trip, by `<verb>:<main table>`.",
    ["operation"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
DB_ERRORS = Counter(
    "facetoface_db_errors_total",
    "Database driver errors by kind (disconnect, timeout, integrity, operational, ...).",
    ["kind"],
)
DB_UNAVAILABLE = Counter(
    "facetoface_db_unavailable_total",
    "Database calls answered 503 database_unavailable, by reason.",
    ["reason"],
)
DB_STALE_CONNECTIONS = Counter(
    "facetoface_db_stale_connections_total",
    "Pooled connections found closed by the server before use, and replaced.",
)

# --- Tavus -------------------------------------------------------------------------------
_TAVUS_ENDPOINTS = frozenset(
    {
        "create_conversation",
        "get_conversation",
        "list_conversations",
        "end_conversation",
        "delete_conversation",
        "get_persona",
        "get_replica",
        "verify_api_key",
        "list_memory_stores",
        "delete_memory_store",
        "list_tools",
        "create_tool",
        "delete_tool",
        "list_pal_tools",
        "attach_pal_tools",
        "create_memory_store",
        "get_memory_store",
        "pin_memory",
        "delete_pinned_memory",
        "get_learned_memory",
    }
)
_TAVUS_OUTCOMES = frozenset(
    {
        "ok",
        "cancelled",
        "error",
        "rejected",
        "invalid_request",
        "auth_error",
        "concurrency_limit",
        "out_of_credits",
        "not_found",
        "rate_limited",
        "server_error",
        "unavailable",
        "outcome_unknown",
    }
)
TAVUS_REQUESTS = Counter(
    "facetoface_tavus_requests_total",
    "HTTP attempts at Tavus by endpoint and outcome (each retry is an attempt).",
    ["endpoint", "outcome"],
)
TAVUS_DURATION = Histogram(
    "facetoface_tavus_request_duration_seconds",
    "One HTTP attempt at Tavus, by endpoint and outcome.",
    ["endpoint", "outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 15.0, 20.0),
)

# --- sessions, callbacks, reconciler -----------------------------------------------------
SESSIONS_STARTED = Counter(
    "facetoface_sessions_started_total",
    "Sessions whose Tavus conversation was created.",
)
START_FAILURES = Counter(
    "facetoface_session_start_failures_total",
    "Starts that wrote the session rows but got no session, by failure code.",
    ["reason"],
)


class ToolCallOutcome(StrEnum):
    """What became of a tool call or post-call report Tavus delivered."""

    done = "done"  # acted on (it may have changed nothing: a goal already at that value)
    refused = "refused"  # the one 404: signature, session, goal, replay, unknown tool
    invalid = "invalid"  # signed, but the body or arguments are not what the tool takes
    limit_reached = "limit_reached"  # TOOL_CHANGES_PER_SESSION reached
    memory_off = "memory_off"  # `remember` while the user (or deployment) keeps no memory
    memory_failed = "memory_failed"  # `remember` while Tavus's memory did not answer


TOOL_CALLS = Counter(
    "facetoface_tool_calls_total",
    "Tool calls and post-call reports Tavus delivered, by what became of them.",
    ["outcome"],
)
SESSIONS_ENDED = Counter(
    "facetoface_sessions_ended_total",
    "Live sessions that ended, by normalised shutdown reason (`user_end`: our end call).",
    ["shutdown_reason"],
)
CALLBACKS = Counter(
    "facetoface_callbacks_total",
    "Tavus callbacks stored, by event type and outcome.",
    ["event_type", "outcome"],
)
RECONCILER_ACTIONS = Counter(
    "facetoface_reconciler_actions_total",
    "Actions the reconciler took on stuck or unresolved sessions.",
    ["action"],
)
WEBHOOK_DELIVERIES = Counter(
    "facetoface_webhook_deliveries_total",
    "Attempts to deliver the app's webhooks, and events given up on, by outcome.",
    ["outcome"],
)
_WEBHOOK_OUTCOMES = frozenset({"delivered", "retrying", "failed", "lease_lost"})
#: Names of the gauges computed from the database at scrape time (see `session_gauges`).
LIVE_SESSIONS = "facetoface_live_sessions"
PAST_MAX_DURATION = "facetoface_sessions_past_max_duration"
#: The outbox's gauges, also counted at scrape time (see `webhook_gauges`).
WEBHOOK_PENDING = "facetoface_webhook_outbox_pending"
WEBHOOK_OLDEST_DUE = "facetoface_webhook_outbox_oldest_due_seconds"
WEBHOOK_FAILED = "facetoface_webhook_events_failed"
WEBHOOK_GAUGES = (WEBHOOK_PENDING, WEBHOOK_OLDEST_DUE, WEBHOOK_FAILED)

#: Tavus's documented shutdown reasons (normalised: lower case, no " reached"), matched by
#: prefix, plus the origin app's alias and our own end call.
_SHUTDOWN_REASONS = (
    "max_call_duration",
    "participant_left_timeout",
    "participant_absent_timeout",
    "bot_could_not_join_meeting",
    "daily_room_has_been_deleted",
    "exception_encountered_during_conversation_startup",
    "end_conversation_endpoint_hit",
    "conversation_ended",
    "user_end",
)
_LABEL_WORD = re.compile(r"[a-z][a-z0-9_]{0,39}")


@dataclass(frozen=True, slots=True)
class LabelSets:
    """The bounded label values that belong to other layers (the schema's tables, the
    conversation core's event types and outcomes, the failure codes), handed over at wiring
    time (`configure_labels`) so this module imports nothing above it. Until then every such
    value is `other`."""

    tables: frozenset[str] = frozenset()
    event_types: frozenset[str] = frozenset()
    callback_outcomes: frozenset[str] = frozenset()
    start_failure_reasons: frozenset[str] = frozenset()
    db_unavailable_reasons: frozenset[str] = frozenset()


_labels = LabelSets()


def configure_labels(labels: LabelSets) -> None:
    """Set the label sets (the application's wiring calls this once, at startup)."""
    global _labels
    _labels = labels
    sql_operation.cache_clear()


def _bounded(value: str, allowed: Iterable[str]) -> str:
    return value if value in allowed else "other"


def observe_http_request(method: str, route: str, status: int, seconds: float) -> None:
    """One served request; `route` must be a template (or `UNMATCHED_ROUTE`)."""
    if route in UNTRACKED_ROUTES:
        return
    method = _bounded(method.upper(), _METHODS)
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_DURATION.labels(method, route).observe(seconds)


def record_connection_refused(reason: str) -> None:
    """The server refused a connection (`too_many_connections`) or a request's head
    (`head_too_large`, `head_timeout`) before the app saw it."""
    HTTP_REFUSED.labels(_bounded(reason, _REFUSAL_REASONS)).inc()


def record_tavus_request(endpoint: str, outcome: str, seconds: float) -> None:
    """`TavusClient(on_request=...)` hook: one call per HTTP attempt."""
    endpoint = _bounded(endpoint, _TAVUS_ENDPOINTS)
    outcome = _bounded(outcome, _TAVUS_OUTCOMES)
    TAVUS_REQUESTS.labels(endpoint, outcome).inc()
    TAVUS_DURATION.labels(endpoint, outcome).observe(seconds)
    timing.add("tavus", seconds)


def record_session_started() -> None:
    SESSIONS_STARTED.inc()


def record_tool_call(outcome: ToolCallOutcome) -> None:
    TOOL_CALLS.labels(outcome.value).inc()


def record_start_failure(reason: str) -> None:
    """A start that wrote its rows and then failed; `reason` is the row's failure code."""
    START_FAILURES.labels(_bounded(reason, _labels.start_failure_reasons)).inc()


def shutdown_reason_label(reason: str | None) -> str:
    """Tavus's free-text reasons as a bounded label (`internal error at step 3` →
    `internal_error`, anything unknown → `other`, none → `unknown`)."""
    if not reason:
        return "unknown"
    value = re.sub(r"\s+reached$", "", " ".join(reason.split()).lower())
    for known in _SHUTDOWN_REASONS:
        if value.startswith(known):
            return known
    return "internal_error" if value.startswith("internal error") else "other"


def record_session_ended(shutdown_reason: str | None) -> None:
    """A live session ended; pass `"user_end"` when our end call closed it without a reason."""
    SESSIONS_ENDED.labels(shutdown_reason_label(shutdown_reason)).inc()


def callback_event_type(event_type: str) -> str:
    """Known Tavus event types as themselves, anything else as `other`."""
    return _bounded(event_type, _labels.event_types)


def record_callback(event_type: str, outcome: str) -> None:
    """One stored callback: outcome `applied`, `no_effect`, `ignored` or `duplicate`."""
    CALLBACKS.labels(
        callback_event_type(event_type), _bounded(outcome, _labels.callback_outcomes)
    ).inc()


def record_webhook_delivery(outcome: str, count: int = 1) -> None:
    """One webhook attempt's outcome (or `count` events given up on)."""
    WEBHOOK_DELIVERIES.labels(_bounded(outcome, _WEBHOOK_OUTCOMES)).inc(count)


def record_reconciler_action(action: str, count: int = 1) -> None:
    """Reconciler actions, a short snake_case word (`adopted`, `marked_failed`, ...);
    `recovered:<event type>` is counted as `recovered`."""
    action = action.split(":", 1)[0]
    RECONCILER_ACTIONS.labels(action if _LABEL_WORD.fullmatch(action) else "other").inc(count)


# --- database instrumentation ------------------------------------------------------------
_NAME = r'(?:"(?:[^"]|"")*"|[A-Za-z_][A-Za-z0-9_$]*)'
#: String literals, (possibly qualified and quoted) names, parentheses.
_TOKEN = re.compile(rf"'(?:[^']|'')*'|{_NAME}(?:\.{_NAME})*|[()]")
_VERBS = frozenset(
    {"select", "insert", "update", "delete", "begin", "commit", "rollback", "savepoint", "release"}
)
_OTHER_VERBS = frozenset({"set", "show", "lock", "truncate", "vacuum", "analyze"})
_DML = {"insert": "into", "update": None, "delete": "from"}


def _identifier(token: str) -> str:
    return token.rsplit(".", 1)[-1].strip('"').lower()


@functools.lru_cache(maxsize=2048)
def sql_operation(statement: str) -> str:
    """`<verb>:<main table>` of a statement, e.g. `select:daily_sessions` (cached per text).

    The main table is the target of INSERT/UPDATE/DELETE, or the first table of the outermost
    FROM of a SELECT; for `WITH ...` the outer statement if it writes, else the first write
    inside it. Tables outside the schema are `other`; statements without one are the bare verb.
    """
    leveled: list[tuple[str, int]] = []  # (token, parenthesis depth), keywords lower-cased
    depth = 0
    for match in _TOKEN.finditer(statement[:4000]):
        tok = match.group(0)
        if tok == "(":
            depth += 1
        elif tok == ")":
            depth = max(0, depth - 1)
        else:
            leveled.append((tok if tok[0] == "'" else tok.lower(), depth))
    if not leveled:
        return "other"
    first = leveled[0][0]
    if first == "with":
        outer = next((i for i, (t, d) in enumerate(leveled) if d == 0 and t in _VERBS), None)
        if outer is not None and leveled[outer][0] in _DML:
            return _target(leveled, outer)
        inner = next((i for i, (t, d) in enumerate(leveled) if d > 0 and t in _DML), None)
        if inner is not None:
            return _target(leveled, inner)
        return _select_table(leveled, outer) if outer is not None else "other"
    if first in _DML:
        return _target(leveled, 0)
    if first == "select":
        return _select_table(leveled, 0)
    return first if first in _VERBS or first in _OTHER_VERBS else "other"


def _table_label(verb: str, token: str | None) -> str:
    if token is None:
        return verb
    name = _identifier(token)
    return f"{verb}:{name if name in _labels.tables else 'other'}"


def _target(leveled: list[tuple[str, int]], at: int) -> str:
    verb, depth = leveled[at]
    keyword = _DML[verb]
    rest = [t for t, d in leveled[at + 1 : at + 4] if d == depth]
    if keyword is not None and rest and rest[0] == keyword:
        rest = rest[1:]
    return _table_label(verb, rest[0] if rest else None)


def _select_table(leveled: list[tuple[str, int]], at: int) -> str:
    depth = leveled[at][1]
    following = leveled[at + 1 :]
    for i, (tok, d) in enumerate(following[:-1]):
        if d == depth and tok == "from" and following[i + 1][1] == depth:
            return _table_label("select", following[i + 1][0])
    # No table in the outer FROM (scalar subqueries only): the first table anywhere.
    for i, (tok, _) in enumerate(following[:-1]):
        if tok == "from" and _identifier(following[i + 1][0]) in _labels.tables:
            return _table_label("select", following[i + 1][0])
    return "select"


def db_error_kind(ctx: ExceptionContext) -> str:
    """A bounded kind for a driver error: `disconnect`, `timeout`, `integrity`, ..."""
    if ctx.is_disconnect:
        return "disconnect"
    chain: list[BaseException] = []
    exc: BaseException | None = ctx.original_exception
    while exc is not None and len(chain) < 5:
        chain.append(exc)
        exc = exc.__cause__
    names = " ".join(type(e).__name__ for e in chain)
    if "Timeout" in names or "QueryCanceled" in names:
        return "timeout"
    wrapped = ctx.sqlalchemy_exception
    name = type(wrapped).__name__ if wrapped is not None else type(ctx.original_exception).__name__
    return {
        "IntegrityError": "integrity",
        "OperationalError": "operational",
        "InterfaceError": "interface",
        "ProgrammingError": "programming",
        "DataError": "data",
        "InternalError": "internal",
        "NotSupportedError": "not_supported",
    }.get(name, "other")


_STARTED = "_facetoface_query_started"


def _before_cursor_execute(
    conn: Connection, cursor: Any, statement: str, params: Any, context: Any, many: bool
) -> None:
    if context is not None:
        setattr(context, _STARTED, time.perf_counter())


def _after_cursor_execute(
    conn: Connection, cursor: Any, statement: str, params: Any, context: Any, many: bool
) -> None:
    started = getattr(context, _STARTED, None)
    if started is not None:
        seconds = time.perf_counter() - started
        DB_QUERY_DURATION.labels(sql_operation(statement)).observe(seconds)
        timing.add("db", seconds)


def _handle_error(ctx: ExceptionContext) -> None:
    if ctx.is_pre_ping:
        return  # a stale pooled connection, replaced at once: not an error anyone sees
    if ctx.connection is None:
        return  # a failed connect: counted by `_do_connect`, which sees every kind
    DB_ERRORS.labels(db_error_kind(ctx)).inc()


def _do_connect(dialect: Dialect, record: Any, cargs: Any, cparams: Any) -> Any:
    # Connection refused / reset / timed out are plain OSErrors the driver does not wrap, so
    # `handle_error` never sees them: count every failed connect here.
    try:
        return dialect.connect(*cargs, **cparams)
    except Exception:
        DB_ERRORS.labels("connect").inc()
        raise


def record_db_round_trip(operation: str, seconds: float) -> None:
    """One `Database.run` message (identity and statement together): its round trip."""
    DB_QUERY_DURATION.labels(operation).observe(seconds)


def record_db_unavailable(reason: str) -> None:
    DB_UNAVAILABLE.labels(_bounded(reason, _labels.db_unavailable_reasons)).inc()


def record_db_stale_connection() -> None:
    DB_STALE_CONNECTIONS.inc()


def instrument_engine(engine: AsyncEngine | Engine) -> None:
    """Time every statement and count driver errors on `engine` (idempotent)."""
    target = engine.sync_engine if isinstance(engine, AsyncEngine) else engine
    if event.contains(target, "after_cursor_execute", _after_cursor_execute):
        return
    event.listen(target, "before_cursor_execute", _before_cursor_execute)
    event.listen(target, "after_cursor_execute", _after_cursor_execute)
    event.listen(target, "handle_error", _handle_error)
    event.listen(target, "do_connect", _do_connect)


# --- exposition --------------------------------------------------------------------------
def multiprocess_dir() -> str | None:
    """`PROMETHEUS_MULTIPROC_DIR` when set (multi-process mode), else None."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def session_gauges(live: int, past_max_duration: int) -> list[Metric]:
    """The two database-derived gauges as metric families, for `render_metrics(extra=...)`."""
    live_family = GaugeMetricFamily(LIVE_SESSIONS, "Live sessions in the database.")
    live_family.add_metric([], live)
    past = GaugeMetricFamily(
        PAST_MAX_DURATION,
        "Live sessions that started longer ago than the call cap plus a grace period.",
    )
    past.add_metric([], past_max_duration)
    return [live_family, past]


def webhook_gauges(pending: int, oldest_due_seconds: float, failed: int) -> list[Metric]:
    """The outbox's gauges (counted in the database at scrape time)."""
    families: list[Metric] = []
    for name, doc, value in (
        (WEBHOOK_PENDING, "App webhook events not delivered yet.", pending),
        (
            WEBHOOK_OLDEST_DUE,
            "How long the oldest due webhook event has waited for delivery (0: none due).",
            oldest_due_seconds,
        ),
        (
            WEBHOOK_FAILED,
            "App webhook events given up on (kept for WEBHOOK_RETENTION_DAYS).",
            failed,
        ),
    ):
        family = GaugeMetricFamily(name, doc)
        family.add_metric([], value)
        families.append(family)
    return families


class _Combined(Collector):
    def __init__(self, sources: list[Collector], extra: list[Metric]) -> None:
        self._sources = sources
        self._extra = extra

    def collect(self) -> Iterator[Metric]:
        for source in self._sources:
            yield from source.collect()
        yield from self._extra


def render_metrics(
    accept: str | None = None,
    *,
    extra: Iterable[Metric] = (),
    multiprocess_path: str | None = None,
) -> tuple[bytes, str]:
    """The exposition (body, content type) for an `Accept` header.

    Multi-process mode (`multiprocess_path`, default `PROMETHEUS_MULTIPROC_DIR`) merges the
    files of every process; otherwise this process's default registry is exposed.
    """
    path = multiprocess_path or multiprocess_dir()
    sources: list[Collector] = (
        [MultiProcessCollector(None, path=path)]  # type: ignore[no-untyped-call]
        if path
        else [REGISTRY]
    )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Combined(sources, list(extra)))
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type
