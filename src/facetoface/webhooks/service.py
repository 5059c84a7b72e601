"""Delivery of the app's webhooks: any replica, under a lease, retried with backoff.

A pass (`run_once`):
1. **claims** up to `WEBHOOK_BATCH_SIZE` due events (`FOR UPDATE SKIP LOCKED` and a lease with
   a token), then commits: no transaction is open while the app is called;
2. **sends** each (at most `WEBHOOK_CONCURRENCY` at once) as a Standard Webhooks request: the
   event's id as `webhook-id` on every attempt, this attempt's time and signature, the body
   `{"type", "timestamp", "data"}` built the same way each time;
3. **records** each outcome, only if this replica still holds the lease: a 2xx is
   `delivered`; anything else (a status, a timeout, a refused connection) is retried after an
   exponential backoff with jitter (`WEBHOOK_RETRY_FIRST_SECONDS` doubling up to
   `WEBHOOK_RETRY_MAX_SECONDS`, at least the answer's `Retry-After`) until the retry window
   (`WEBHOOK_RETRY_WINDOW_SECONDS`, 24 h) is over, then `failed`; a `410 Gone` fails at once;
and before all that (on a process's first pass, then at most once a minute), **expires**
pending events past their window and **purges** delivered and failed ones older than
`WEBHOOK_RETENTION_DAYS`.

Without `APP_WEBHOOK_URL` only the expiry and the purge run: events are still recorded (they are the
outbox of the changes), and expire unsent. Delivery is at least once: a 2xx whose recording
fails is sent again, with the same id, which receivers dedupe on.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import structlog

from facetoface.clock import utcnow
from facetoface.config import Settings
from facetoface.db import Database, DatabaseUnavailable
from facetoface.observability import metrics
from facetoface.outbox import DeliveryStatus
from facetoface.webhooks.repository import Claimed, EventRow, WebhookRepository
from facetoface.webhooks.signing import headers

log = structlog.get_logger(__name__)

#: Recorded on events that expire on a deployment that does not deliver.
NOT_CONFIGURED = "not sent: APP_WEBHOOK_URL is not set"
GAVE_UP = "not delivered within the retry window"
#: Expiry and retention run at most this often per process (and on its first pass).
SWEEP_EVERY = timedelta(seconds=60)
#: Jitter, not secrecy.
_RNG = random.Random()  # noqa: S311


def backoff_seconds(
    attempts: int, *, first: float, cap: float, rng: random.Random | None = None
) -> float:
    """The wait after the `attempts`-th failed attempt: `first` doubling per attempt up to
    `cap`, then jittered into its upper half (so replicas and events spread out, and the wait
    never shrinks below half the schedule)."""
    ceiling = min(cap, first * 2.0 ** max(0, attempts - 1))
    draw: float = (rng or _RNG).random()
    return ceiling / 2 + draw * ceiling / 2


def body_of(event_type: str, occurred_at: datetime, data: dict[str, Any]) -> bytes:
    """The request body, the same bytes on every attempt of one event."""
    return json.dumps(
        {"type": event_type, "timestamp": occurred_at.isoformat(), "data": data},
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one attempt met: delivered, or why not (and the answer's Retry-After)."""

    delivered: bool
    error: str | None = None
    retry_after: float | None = None
    #: Refused for good (410 Gone): not retried.
    final: bool = False


@dataclass
class DeliveryReport:
    """What one pass did, by outcome (`delivered`, `retrying`, `failed`, `expired`, ...)."""

    outcomes: Counter[str] = field(default_factory=Counter)


class WebhookDelivery:
    """Sends the outbox's events to the app; one per app (see the module docstring)."""

    def __init__(
        self, settings: Settings, db: Database, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.settings = settings
        self.db = db
        self.url = settings.app_webhook_url
        self._key = settings.app_webhook_signing_key
        self._transport = transport
        #: Made on the first delivery: a replica (or a command) that sends nothing holds no
        #: connection pool.
        self._http: httpx.AsyncClient | None = None
        self._last_sweep: datetime | None = None

    @property
    def configured(self) -> bool:
        return bool(self.url) and self._key is not None

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            # Redirects are failures (Standard Webhooks): the event never goes elsewhere.
            self._http = httpx.AsyncClient(
                timeout=self.settings.webhook_timeout_seconds,
                follow_redirects=False,
                transport=self._transport,
            )
        return self._http

    # --- the loop -------------------------------------------------------------------------
    async def run_forever(self) -> None:
        """Passes every `WEBHOOK_INTERVAL_SECONDS` (jittered) until cancelled; at once again
        while a pass found a full batch."""
        interval = self.settings.webhook_interval_seconds
        while True:
            try:
                report = await self.run_once()
                full = report.outcomes["claimed"] >= self.settings.webhook_batch_size
            except DatabaseUnavailable as exc:  # expected while the database is away
                log.warning("webhooks.pass_failed", error_type=type(exc).__name__)
                full = False
            except Exception:  # one failed pass must not stop the loop
                log.exception("webhooks.pass_failed")
                full = False
            if not full:
                await asyncio.sleep(interval * (0.5 + random.random()))  # noqa: S311

    async def run_once(self) -> DeliveryReport:
        """One pass: expire and purge; claim, send, record."""
        report = DeliveryReport()
        s = self.settings
        now = utcnow()
        if self._last_sweep is None or now - self._last_sweep >= SWEEP_EVERY:
            await self._sweep(now, report)
            self._last_sweep = now
        if not self.configured:
            return report
        async with self.db.transaction(role="service") as session:
            claimed = await WebhookRepository(session).claim(
                now=now,
                lease=timedelta(seconds=s.webhook_lease_seconds),
                limit=s.webhook_batch_size,
            )
        report.outcomes["claimed"] = len(claimed)
        limit = asyncio.Semaphore(s.webhook_concurrency)

        async def one(event: Claimed) -> None:
            async with limit:
                outcome = await self._deliver(event)
            report.outcomes[outcome] += 1

        await asyncio.gather(*(one(event) for event in claimed))
        return report

    async def _sweep(self, now: datetime, report: DeliveryReport) -> None:
        """Fail what is past its window (never sent a day late) and purge what is old."""
        s = self.settings
        window = timedelta(seconds=s.webhook_retry_window_seconds)
        async with self.db.transaction(role="service") as session:
            repo = WebhookRepository(session)
            expired = await repo.expire(
                now=now,
                window=window,
                error=GAVE_UP if self.configured else NOT_CONFIGURED,
                limit=s.webhook_batch_size * 10,
            )
            purged = await repo.purge(
                before=now - timedelta(days=s.webhook_retention_days),
                limit=s.webhook_batch_size * 10,
            )
        if expired:
            report.outcomes["expired"] += expired
            if self.configured:
                metrics.record_webhook_delivery("failed", expired)
        if purged:
            report.outcomes["purged"] += purged

    # --- one event ----------------------------------------------------------------------------
    async def _deliver(self, event: Claimed) -> str:
        """Send one claimed event and record the outcome; the outcome's name."""
        attempt = await self._send(event)
        now = utcnow()
        s = self.settings
        if attempt.delivered:
            status, next_at, outcome = DeliveryStatus.delivered, now, "delivered"
        else:
            delay = backoff_seconds(
                event.attempts + 1,
                first=s.webhook_retry_first_seconds,
                cap=s.webhook_retry_max_seconds,
            )
            if attempt.retry_after is not None:
                delay = max(delay, min(attempt.retry_after, s.webhook_retry_max_seconds))
            next_at = now + timedelta(seconds=delay)
            until = event.retry_until or event.created_at + timedelta(
                seconds=s.webhook_retry_window_seconds
            )
            if attempt.final or next_at > until:
                status, outcome = DeliveryStatus.failed, "failed"
            else:
                status, outcome = DeliveryStatus.pending, "retrying"
        async with self.db.transaction(role="service") as session:
            written = await WebhookRepository(session).record(
                event, now=now, status=status, error=attempt.error, next_attempt_at=next_at
            )
        if not written:
            outcome = "lease_lost"  # another replica took it over; its outcome counts
        metrics.record_webhook_delivery(outcome)
        log.info(
            "webhooks.attempt",
            webhook_id=str(event.id),
            event_type=event.event_type,
            outcome=outcome,
            attempt=event.attempts + 1,
            error=attempt.error,
        )
        return outcome

    async def _send(self, event: Claimed) -> Attempt:
        assert self._key is not None
        body = body_of(event.event_type, event.occurred_at, event.data)
        timestamp = int(utcnow().timestamp())
        try:
            # The answer's body is never read: only its status matters.
            async with self._client().stream(
                "POST",
                self.url,
                content=body,
                headers=headers(self._key, str(event.id), timestamp, body),
            ) as response:
                status = response.status_code
                retry_after = _retry_after(response.headers.get("retry-after"))
        except httpx.TimeoutException:
            return Attempt(False, "timeout")
        except httpx.ConnectError:
            return Attempt(False, "connection refused or unreachable")
        except httpx.HTTPError as exc:
            return Attempt(False, type(exc).__name__)
        if 200 <= status < 300:
            return Attempt(True)
        error = f"HTTP {status}"
        return Attempt(False, error, retry_after, final=status == 410)

    # --- the operators' view --------------------------------------------------------------
    async def events(
        self, status: DeliveryStatus | None, limit: int
    ) -> tuple[list[EventRow], dict[str, int], float | None]:
        """The newest events, counts by status, and the oldest due event's age (seconds)."""
        async with self.db.transaction(role="service") as session:
            repo = WebhookRepository(session)
            rows = await repo.events(status=status, limit=limit)
            counts, oldest = await repo.counts(utcnow())
        return rows, counts, oldest

    async def send_again(self, event_id: Any) -> EventRow | None:
        """Make an event due now with a fresh retry window (the same id); None if unknown."""
        now = utcnow()
        window = timedelta(seconds=self.settings.webhook_retry_window_seconds)
        async with self.db.transaction(role="service") as session:
            repo = WebhookRepository(session)
            if not await repo.send_again(event_id, now=now, window=window):
                return None
            row = await repo.event(event_id)
        log.info("webhooks.send_again", webhook_id=str(event_id))
        return row


def _retry_after(value: str | None) -> float | None:
    """A `Retry-After` in seconds (the HTTP-date form is ignored: the backoff applies)."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None
