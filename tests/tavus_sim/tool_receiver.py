"""A tool endpoint for the simulator's tests: a real HTTP server that checks the HMAC signature
of every request itself and records what it got."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tavus_sim.server import BackgroundServer

SECRET = "tool-secret-for-tests"


@dataclass(frozen=True, slots=True)
class Received:
    """One request the receiver got."""

    path: str
    body: dict[str, Any]
    signature: str | None
    signature_valid: bool


class ToolReceiver:
    """Answers ``POST /tools/{name}`` with ``Updated …``-style text (or JSON for names ending in
    ``_json``), 401 on a bad signature, and records every request (thread-safe)."""

    def __init__(self, secret: str = SECRET) -> None:
        self._secret = secret.encode()
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self.fail_with: int | None = None
        """Answer this status to every request (a broken endpoint)."""
        self.server = BackgroundServer(
            Starlette(
                routes=[
                    Route("/tools/{name}", self._handle, methods=["POST"]),
                    Route("/post-call/{name}", self._handle, methods=["POST"]),
                ]
            )
        )

    async def _handle(self, request: Request) -> Response:
        raw = await request.body()
        given = request.headers.get("x-tavus-signature")
        expected = hmac.new(self._secret, raw, hashlib.sha256).hexdigest()
        valid = given is not None and hmac.compare_digest(given, expected)
        body = json.loads(raw)
        with self._lock:
            self._received.append(Received(request.url.path, body, given, valid))
        if not valid:
            return JSONResponse({"detail": "Not found"}, status_code=404)
        if self.fail_with is not None:
            return JSONResponse({"detail": "broken"}, status_code=self.fail_with)
        name = request.path_params["name"]
        said = f"{name} done with {json.dumps(body.get('arguments'), sort_keys=True)}"
        if name.endswith("_json"):
            return JSONResponse({"result": said})
        return PlainTextResponse(said)

    def url(self, name: str, kind: str = "tools") -> str:
        """The endpoint URL of one tool."""
        return f"{self.server.base_url}/{kind}/{name}"

    def received(self) -> list[Received]:
        """Every request so far, in arrival order."""
        with self._lock:
            return list(self._received)

    def clear(self) -> None:
        """Forget what was received; answer normally again."""
        with self._lock:
            self._received.clear()
        self.fail_with = None
