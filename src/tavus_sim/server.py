"""Running the simulator: blocking (:func:`run_sim`) or in a thread (:class:`SimServer`)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import httpx
import uvicorn

from tavus_sim.app import create_sim_app
from tavus_sim.config import SimConfig
from tavus_sim.responses import dumps
from tavus_sim.runtime import SimRuntime

_POLL_S = 0.005


def run_sim(host: str = "127.0.0.1", port: int = 8100, config: SimConfig | None = None) -> None:
    """Serve the simulator with uvicorn until interrupted (blocking)."""
    uvicorn.run(
        create_sim_app(config),
        host=host,
        port=port,
        ws="none",
        # Fault delays can hold requests for long; don't let them block Ctrl-C forever.
        timeout_graceful_shutdown=2,
    )


class BackgroundServer:
    """Serve any ASGI app with uvicorn in a daemon thread with its own event loop.

    Binds ``host:port`` (port 0: a free port, read back after start-up). Used by
    :class:`SimServer`, and handy for tests that need a second server (e.g. a callback
    receiver).
    """

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        startup_timeout_s: float = 10.0,
    ) -> None:
        self._config = uvicorn.Config(
            app,
            host=host,
            port=port,
            lifespan="on",
            # log_config=None: don't replace the host process's logging configuration.
            log_config=None,
            log_level="warning",
            access_log=False,
            ws="none",
            loop="asyncio",
            timeout_graceful_shutdown=2,
        )
        self._host = host
        self._startup_timeout_s = startup_timeout_s
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        """The bound port (after :meth:`start`)."""
        if self._port is None:
            raise RuntimeError("server not started")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://host:port`` of the running server."""
        return f"http://{self._host}:{self.port}"

    def start(self) -> Self:
        """Start serving and return once the server accepts connections."""
        if self._thread is not None:
            raise RuntimeError("server already started")
        server = uvicorn.Server(self._config)
        self._server = server
        self._thread = threading.Thread(target=self._run, name="uvicorn-background", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self._startup_timeout_s
        while not server.started:
            if not self._thread.is_alive():
                self._thread = None
                raise RuntimeError("server failed to start (see the log for the app's error)")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError("server did not start in time")
            time.sleep(_POLL_S)
        self._port = int(server.servers[0].sockets[0].getsockname()[1])
        return self

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        assert self._server is not None
        self._loop = asyncio.get_running_loop()
        await self._server.serve()

    def call_soon(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` in the server's event loop thread (no-op when not running)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            # The loop may close between the check and the call.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(callback)

    def stop(self, *, wake: Callable[[], object] | None = None, timeout_s: float = 10.0) -> None:
        """Stop the server and wait for its thread.

        ``wake`` is called in the loop until the thread ends, to release requests that would
        otherwise hold uvicorn's graceful shutdown.
        """
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        deadline = time.monotonic() + timeout_s
        while thread.is_alive() and time.monotonic() < deadline:
            if wake is not None:
                self.call_soon(wake)
            thread.join(0.05)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout_s)
        self._thread = None
        self._server = None
        self._loop = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class SimServer:
    """The simulator on a free port of 127.0.0.1, in a background thread.

    Use as a context manager (or :meth:`start`/:meth:`stop`)::

        with SimServer(SimConfig(time_scale=1000)) as sim:
            client = httpx.Client(base_url=sim.api_url, headers={"x-api-key": sim.api_key})
            ...
            sim.add_fault("timeout", endpoint="create", delay_s=5, apply_first=True)

    The control helpers wrap ``/_sim`` and ``/rooms`` with a synchronous httpx client and
    raise ``httpx.HTTPStatusError`` on error answers. They are not thread-safe.
    """

    def __init__(
        self, config: SimConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.config = config or SimConfig()
        self.app = create_sim_app(self.config)
        self._server = BackgroundServer(self.app, host=host, port=port)
        self._client: httpx.Client | None = None

    @property
    def base_url(self) -> str:
        """E.g. ``http://127.0.0.1:54321``."""
        return self._server.base_url

    @property
    def api_url(self) -> str:
        """The Tavus API base, ``base_url + "/v2"``."""
        return f"{self.base_url}/v2"

    @property
    def api_key(self) -> str:
        """The API key the simulator was started with."""
        return self.config.api_key

    def start(self) -> Self:
        """Start the simulator; returns when it accepts connections."""
        self._server.start()
        self._client = httpx.Client(base_url=self.base_url, timeout=30.0)
        return self

    def stop(self) -> None:
        """Stop the simulator (pending fault delays are cut short)."""
        if self._client is not None:
            self._client.close()
            self._client = None
        runtime = self.app.state.sim
        assert isinstance(runtime, SimRuntime)
        self._server.stop(wake=runtime.interrupt_sleepers)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ control helpers

    def _call(self, method: str, path: str, json: Any = None) -> httpx.Response:
        if self._client is None:
            raise RuntimeError("SimServer not started")
        # The simulator's own encoding: any string (a lone surrogate too) can be sent.
        content = None if json is None else dumps(json)
        headers = None if json is None else {"content-type": "application/json"}
        response = self._client.request(method, path, content=content, headers=headers)
        response.raise_for_status()
        return response

    def add_fault(
        self,
        kind: str,
        *,
        endpoint: str = "any",
        count: int = 1,
        status: int = 500,
        body: dict[str, Any] | str | None = None,
        delay_s: float = 30.0,
        apply_first: bool = False,
        conversation_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Queue a fault rule (see faults.py); return the pending rules."""
        rule = {
            "conversation_id": conversation_id,
            "kind": kind,
            "endpoint": endpoint,
            "count": count,
            "status": status,
            "body": body,
            "delay_s": delay_s,
            "apply_first": apply_first,
        }
        faults: list[dict[str, Any]] = self._call("POST", "/_sim/faults", rule).json()["faults"]
        return faults

    def faults(self) -> list[dict[str, Any]]:
        """Return the pending fault rules."""
        faults: list[dict[str, Any]] = self._call("GET", "/_sim/faults").json()["faults"]
        return faults

    def clear_faults(self) -> None:
        """Drop every pending fault rule."""
        self._call("DELETE", "/_sim/faults")

    def conversations(self) -> dict[str, Any]:
        """Return ``GET /_sim/conversations``: counts, conversations and the create ledger."""
        data: dict[str, Any] = self._call("GET", "/_sim/conversations").json()
        return data

    def conversation(self, conversation_id: str) -> dict[str, Any]:
        """Return everything the simulator knows about one conversation."""
        data: dict[str, Any] = self._call("GET", f"/_sim/conversations/{conversation_id}").json()
        return data

    def memory(self) -> dict[str, Any]:
        """Return every Memory Store (with its memories) and every legacy memory tag."""
        data: dict[str, Any] = self._call("GET", "/_sim/memory").json()
        return data

    def tool_calls(self, conversation_id: str | None = None) -> list[dict[str, Any]]:
        """Return every call made to a tool's endpoint (``GET /_sim/tool-calls``)."""
        path = "/_sim/tool-calls"
        if conversation_id is not None:
            path += f"?conversation_id={conversation_id}"
        calls: list[dict[str, Any]] = self._call("GET", path).json()["tool_calls"]
        return calls

    def get_config(self) -> dict[str, Any]:
        """Return the current runtime config."""
        data: dict[str, Any] = self._call("GET", "/_sim/config").json()
        return data

    def set_config(self, **changes: Any) -> dict[str, Any]:
        """Change config fields at runtime (e.g. ``latency_ms=200``); return the new config."""
        data: dict[str, Any] = self._call("PUT", "/_sim/config", changes).json()
        return data

    def reset(self) -> None:
        """Forget all conversations and faults; restore the start config."""
        self._call("POST", "/_sim/reset")

    def shutdown(self, conversation_id: str, reason: str) -> dict[str, Any]:
        """Force a shutdown of an active conversation with any reason."""
        data: dict[str, Any] = self._call(
            "POST", f"/_sim/conversations/{conversation_id}/shutdown", {"reason": reason}
        ).json()
        return data

    def drain(self, timeout_s: float = 5.0) -> bool:
        """Wait until all queued callbacks were delivered; return whether that happened."""
        idle: bool = self._call("POST", "/_sim/drain", {"timeout_s": timeout_s}).json()["idle"]
        return idle

    def join(
        self, conversation_id: str, name: str | None = None, *, token: str | None = None
    ) -> dict[str, Any]:
        """A participant joins the room; returns ``participant_id`` and the greeting."""
        data: dict[str, Any] = self._call(
            "POST", f"/rooms/{conversation_id}/join", {"name": name, "token": token}
        ).json()
        return data

    def say(self, conversation_id: str, text: str, participant_id: str | None = None) -> str:
        """Say something in the room; return the mentor's reply."""
        reply: str = self._call(
            "POST",
            f"/rooms/{conversation_id}/say",
            {"text": text, "participant_id": participant_id},
        ).json()["reply"]
        return reply

    def leave(self, conversation_id: str, participant_id: str | None = None) -> dict[str, Any]:
        """A participant (by default the latest) leaves the room."""
        data: dict[str, Any] = self._call(
            "POST", f"/rooms/{conversation_id}/leave", {"participant_id": participant_id}
        ).json()
        return data

    def room_state(self, conversation_id: str) -> dict[str, Any]:
        """Return the room's state (status, greeting, participants, turns)."""
        data: dict[str, Any] = self._call("GET", f"/rooms/{conversation_id}/state").json()
        return data
