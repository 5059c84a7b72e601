"""Callback sender: POSTs Tavus's conversation webhook envelope to a conversation's
``callback_url``, with retries.

One long-lived ``httpx.AsyncClient`` sends everything. Callbacks of one conversation go out
one at a time, in generation order (unless the shuffle control is on), so tests see a
deterministic order by default; Tavus itself documents no ordering. Retries happen only on
connection errors and 5xx answers, with exponential backoff; any other answer ends the
delivery. Logs carry the event type, conversation id, host and status, never bodies or the
URL path (it holds the service's per-session secret).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import httpx
import structlog

from tavus_sim.background import BackgroundTasks
from tavus_sim.config import SimConfig
from tavus_sim.faults import plan_deliveries
from tavus_sim.responses import dumps
from tavus_sim.state import Conversation, Delivery, isoformat, utcnow

log = structlog.stdlib.get_logger(__name__)


def envelope(
    conversation: Conversation, event_type: str, properties: Mapping[str, Any]
) -> dict[str, Any]:
    """Build a conversation callback in Tavus's envelope, stamped now."""
    return {
        "properties": dict(properties),
        "conversation_id": conversation.conversation_id,
        "webhook_url": conversation.callback_url,
        "event_type": event_type,
        "message_type": "system" if event_type.startswith("system.") else "application",
        "timestamp": isoformat(utcnow()),
    }


class SenderSettings(Protocol):
    """What the sender reads of the runtime, as it stands at each delivery (both change)."""

    config: SimConfig
    rng: random.Random


class CallbackSender:
    """Delivers callbacks in background tasks that ``drain``/``cancel_all`` can reach."""

    def __init__(self, runtime: SenderSettings) -> None:
        self._runtime = runtime
        self._client: httpx.AsyncClient | None = None
        self._tasks = BackgroundTasks()
        self._chains: dict[str, asyncio.Lock] = {}

    async def start(self) -> None:
        """Open the HTTP client (call from the app's lifespan)."""
        if self._client is None:
            # Redirects are not followed: a callback endpoint that redirects is a bug to see.
            self._client = httpx.AsyncClient(follow_redirects=False)

    async def aclose(self) -> None:
        """Cancel pending deliveries and close the HTTP client."""
        await self.cancel_all()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    @property
    def pending(self) -> int:
        """Number of delivery batches not finished yet."""
        return len(self._tasks)

    def send(
        self,
        conversation: Conversation,
        events: list[dict[str, Any]],
        *,
        post_shutdown: bool,
    ) -> None:
        """Queue ``events`` for delivery, applying the callback controls of the config."""
        config = self._runtime.config
        plan = plan_deliveries(events, config, self._runtime.rng, shuffle=post_shutdown)
        for event in plan.dropped:
            conversation.deliveries.append(Delivery(event["event_type"], "dropped"))
        if not conversation.callback_url or not plan.send:
            return
        self._tasks.start(
            self._deliver_batch(conversation, plan.send),
            name=f"tavus_sim.callbacks:{conversation.conversation_id}",
        )

    async def drain(self, timeout_s: float) -> bool:
        """Wait until every queued delivery finished; return whether that happened in time."""
        return await self._tasks.drain(timeout_s)

    async def cancel_all(self) -> None:
        """Cancel every pending delivery and wait for the cancellations to land."""
        await self._tasks.cancel_all()
        self._chains.clear()

    async def _deliver_batch(
        self, conversation: Conversation, payloads: list[dict[str, Any]]
    ) -> None:
        chain = self._chains.setdefault(conversation.conversation_id, asyncio.Lock())
        async with chain:
            for payload in payloads:
                delay_ms = self._runtime.config.callback_delay_ms
                if delay_ms:
                    await asyncio.sleep(delay_ms / 1000)
                delivery = await self._deliver_one(conversation, payload)
                conversation.deliveries.append(delivery)

    async def _deliver_one(self, conversation: Conversation, payload: dict[str, Any]) -> Delivery:
        config = self._runtime.config
        client = self._client
        event_type = str(payload["event_type"])
        url = conversation.callback_url
        bound = log.bind(
            conversation_id=conversation.conversation_id,
            event_type=event_type,
            host=urlsplit(url).netloc,
        )
        if client is None:
            bound.error("tavus_sim.callback.no_client")
            return Delivery(event_type, "failed")
        status: int | None = None
        attempt = 0
        for attempt in range(1, config.callback_max_attempts + 1):
            try:
                response = await client.post(
                    url,
                    content=dumps(payload),
                    headers={"content-type": "application/json"},
                    timeout=config.callback_timeout_s,
                )
            except (httpx.TransportError, httpx.InvalidURL) as exc:
                status = None
                bound.warning("tavus_sim.callback.error", attempt=attempt, error=type(exc).__name__)
            else:
                status = response.status_code
                if status < 500:
                    outcome: Literal["delivered", "rejected"] = (
                        "delivered" if 200 <= status < 300 else "rejected"
                    )
                    bound.info(f"tavus_sim.callback.{outcome}", attempt=attempt, status=status)
                    return Delivery(event_type, outcome, status, attempt)
                bound.warning("tavus_sim.callback.server_error", attempt=attempt, status=status)
            if attempt < config.callback_max_attempts:
                await asyncio.sleep(config.callback_backoff_s * 2 ** (attempt - 1))
        bound.error("tavus_sim.callback.gave_up", attempts=attempt, status=status)
        return Delivery(event_type, "failed", status, attempt)
