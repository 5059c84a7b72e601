"""A real HTTP receiver of the app's webhooks, as an app would run one, for tests.

`WebhookReceiver` listens on 127.0.0.1 (a thread of its own, so it answers while the test's
loop awaits the service) and, for every request, verifies the Standard Webhooks signature with
the reference library (`standardwebhooks`, independent of the service's own signing), then
answers what the test asked for: `accept()` (204), `fail(500)` (any status, with an optional
`Retry-After`). Accepting dedupes by `webhook-id`, as receivers are told to: a second
accepted delivery of one id is recorded as a duplicate (tests assert there is none).
Put a `TcpProxy` in front of it to refuse connections.

The timestamp tolerance (5 minutes) is checked against `now()`: the wall clock by default (the
library's own `verify`), or the service's moved clock (`facetoface.clock`) in tests that
travel in time, where the signature is still the library's (`Webhook.sign`).
"""

from __future__ import annotations

import base64
import hmac
import json
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from standardwebhooks import Webhook, WebhookVerificationError

TOLERANCE = timedelta(minutes=5)


@dataclass(frozen=True)
class Delivery:
    """One request as received."""

    webhook_id: str
    timestamp: int
    signature: str
    body: bytes
    verified: bool
    answered: int

    @property
    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data


@dataclass
class _State:
    answer: int = 204
    retry_after: str | None = None
    deliveries: list[Delivery] = field(default_factory=list)
    accepted: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


class WebhookReceiver:
    """See the module docstring."""

    def __init__(self, secret: str, now: Callable[[], datetime] | None = None) -> None:
        self.webhook = Webhook(secret)
        self.now = now
        self.state = _State()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                status, retry_after = receiver._receive(dict(self.headers.items()), body)
                self.send_response(status)
                if retry_after is not None:
                    self.send_header("Retry-After", retry_after)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> Self:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- what the test controls and reads -------------------------------------------------
    def accept(self) -> None:
        with self.state.lock:
            self.state.answer, self.state.retry_after = 204, None

    def fail(self, status: int = 500, retry_after: str | None = None) -> None:
        with self.state.lock:
            self.state.answer, self.state.retry_after = status, retry_after

    def reset(self) -> None:
        with self.state.lock:
            self.state.answer, self.state.retry_after = 204, None
            self.state.deliveries.clear()
            self.state.accepted.clear()

    @property
    def deliveries(self) -> list[Delivery]:
        with self.state.lock:
            return list(self.state.deliveries)

    @property
    def accepted(self) -> Counter[str]:
        """Accepted deliveries by `webhook-id` (more than 1: a duplicate got through)."""
        with self.state.lock:
            return Counter(self.state.accepted)

    # --- a request ------------------------------------------------------------------------
    def _verify(self, headers: dict[str, str], body: bytes) -> bool:
        lowered = {k.lower(): v for k, v in headers.items()}
        try:
            if self.now is None:
                self.webhook.verify(body, lowered)
                return True
            timestamp = datetime.fromtimestamp(int(lowered["webhook-timestamp"]), tz=UTC)
            if abs(self.now() - timestamp) > TOLERANCE:
                return False
            expected = self.webhook.sign(lowered["webhook-id"], timestamp, body.decode())
            return any(
                hmac.compare_digest(
                    base64.b64decode(expected.split(",")[1]), base64.b64decode(sig.split(",")[1])
                )
                for sig in lowered["webhook-signature"].split(" ")
                if sig.startswith("v1,")
            )
        except (WebhookVerificationError, KeyError, ValueError):
            return False

    def _receive(self, headers: dict[str, str], body: bytes) -> tuple[int, str | None]:
        verified = self._verify(headers, body)
        lowered = {k.lower(): v for k, v in headers.items()}
        with self.state.lock:
            status = self.state.answer if verified else 401
            retry_after = self.state.retry_after if verified else None
            webhook_id = lowered.get("webhook-id", "")
            self.state.deliveries.append(
                Delivery(
                    webhook_id=webhook_id,
                    timestamp=int(lowered.get("webhook-timestamp", "0") or 0),
                    signature=lowered.get("webhook-signature", ""),
                    body=body,
                    verified=verified,
                    answered=status,
                )
            )
            if 200 <= status < 300:
                self.state.accepted[webhook_id] += 1
        return status, retry_after
