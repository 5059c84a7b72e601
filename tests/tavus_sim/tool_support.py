"""Tools for the simulator's tests: a tool endpoint (a real HTTP server that checks the HMAC
signature of every request itself and records what it got), a mentor context listing goals
with their ids, and helpers to register tools."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tavus_sim.server import BackgroundServer

SECRET = "tool-secret-for-tests"
PAL = "p0000default"
GOAL_MEDITATE = "3f2a9c1e-0000-4000-8000-000000000001"
GOAL_RUN = "3f2a9c1e-0000-4000-8000-000000000002"
CONTEXT = (
    "You are «Sage», meeting «Ana Souza».\n"
    "Active goals:\n"
    f"- «Meditate 10 minutes every morning» (goal_id: {GOAL_MEDITATE}, habit goal, 20% done)\n"
    f"- «Run a 5k by June» (goal_id: {GOAL_RUN}, 10% done)\n"
)
TEMPLATE = {"conversation_id": "{conversation_id}", "tool_call_id": "{tool_call_id}"}


def tool_spec(name: str, url: str, **overrides: Any) -> dict[str, Any]:
    """A ``delivery.api`` tool with HMAC auth, as the service registers its tools."""
    spec: dict[str, Any] = {
        "name": name,
        "description": f"The {name} tool",
        "parameters": {"type": "object", "properties": {}},
        "delivery": {
            "api": {
                "url": url,
                "method": "POST",
                "body": TEMPLATE,
                "auth": {"type": "hmac", "secret": SECRET},
            }
        },
    }
    spec.update(overrides)
    return spec


def register(api: httpx.Client, spec: dict[str, Any], pal_id: str | None = PAL) -> str:
    """Create a tool (and attach it to ``pal_id``); return its id."""
    created = api.post("/tools", json=spec)
    assert created.status_code == 200, created.text
    tool_id: str = created.json()["tool_id"]
    if pal_id is not None:
        attached = api.post(f"/pals/{pal_id}/tools", json={"tool_ids": [tool_id]})
        assert attached.status_code == 200, attached.text
    return tool_id


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
