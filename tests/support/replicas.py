"""Real `facetoface serve` processes for tests that need replicas, a killed process or a
server's own HTTP limits: started as subprocesses on free ports, each with its own
`PUBLIC_BASE_URL` (so Tavus's callbacks for a session go to the replica that started it),
sharing one token issuer so one token works on all of them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from facetoface.auth.dev_issuer import mint_token
from facetoface.config import Settings
from tavus_sim import SimServer

SECRET = "chaos-replica-secret-0123456789abcdef0123456789"
#: The issuer every replica trusts (never contacted: tokens are HS256 with SECRET).
ISSUER_BASE = "http://127.0.0.1:9"
#: A replica imports the app and checks its database first: on a machine busy with a whole
#: test run (or two replicas and a 50-start scenario) that took over 20 s once.
_STARTUP_S = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _issuer() -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None, environment="test", supabase_url=ISSUER_BASE, supabase_jwt_secret=SECRET
    )


def replica_auth(user_id: uuid.UUID, key: str | None = None) -> dict[str, str]:
    """Headers for `user_id` that every replica accepts (and an Idempotency-Key)."""
    headers = {"Authorization": f"Bearer {mint_token(_issuer(), user_id=user_id)}"}
    if key:
        headers["Idempotency-Key"] = key
    return headers


def operator_auth() -> dict[str, str]:
    """Headers of an operator (the `/v1/ops` API) that every replica accepts."""
    token = mint_token(_issuer(), user_id=uuid.uuid4(), operator=True)
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Replica:
    """One `serve` process and a client for it."""

    name: str
    port: int
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    #: The Python that runs `facetoface serve` (another release's venv, for upgrade tests).
    python: str = sys.executable
    client: httpx.AsyncClient = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.AsyncClient(base_url=self.url, timeout=30)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spawn(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [self.python, "-m", "facetoface", "serve"],
                env=self.env,
                # Not the source tree: `-m` puts the working directory first on sys.path.
                cwd=self.log.parent,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    async def ready(self) -> None:
        """Wait until `/healthz` answers (the process has its port and its database)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _STARTUP_S
        while loop.time() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start:\n{self.log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.TransportError):
                if (await self.client.get("/healthz", timeout=1)).status_code == 200:
                    return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"{self.name} did not start:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, in-flight requests die with it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    async def restart(self) -> None:
        """Start the process again on the same port (same callback URLs)."""
        self.kill()
        self.spawn()
        await self.ready()

    async def reconcile(self) -> dict[str, Any]:
        """Run one reconciler pass on this replica (`POST /v1/ops/reconciler/passes`)."""
        response = await self.client.post("/v1/ops/reconciler/passes", headers=operator_auth())
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    async def stop(self) -> None:
        await self.client.aclose()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                await asyncio.to_thread(self.process.wait, 10)
            except subprocess.TimeoutExpired:
                self.kill()


def replica_env(database_url: str, sim: SimServer, port: int, **overrides: Any) -> dict[str, str]:
    """The environment of a `serve` replica on `port` (no reconciler loop: tests run passes)."""
    env = {
        **os.environ,
        "ENVIRONMENT": "test",
        "DATABASE_URL": database_url,
        "PORT": str(port),
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "SUPABASE_URL": ISSUER_BASE,
        "SUPABASE_JWT_SECRET": SECRET,
        "TAVUS_API_KEY": sim.api_key,
        "TAVUS_BASE_URL": sim.api_url,
        "TAVUS_DEFAULT_REPLICA_ID": "r0000default",
        "TAVUS_BREAKER_THRESHOLD": "1000",
        "RECONCILE_INTERVAL_SECONDS": "0",
        "LOG_LEVEL": "WARNING",
        # No load balancer polls a test's replicas: stopping one skips the drain's readiness
        # window (tests/reliability/test_drain.py sets its own).
        "SHUTDOWN_READINESS_DELAY_SECONDS": "0",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update({key.upper(): str(value) for key, value in overrides.items()})
    return env


@contextlib.asynccontextmanager
async def serve_replicas(
    count: int,
    *,
    database_url: str,
    sim: SimServer,
    log_dir: Path,
    python: str = sys.executable,
    **overrides: Any,
) -> AsyncIterator[list[Replica]]:
    """`count` `serve` processes on one database and one simulator; stopped afterwards.
    `overrides` are settings (`DB_POOL_SIZE=2`, ...) for all of them; `python` runs them
    (another release's venv: tests/support/releases.py)."""
    replicas = []
    for index in range(count):
        port = free_port()
        replicas.append(
            Replica(
                name=f"replica-{index}",
                port=port,
                env=replica_env(database_url, sim, port, **overrides),
                log=log_dir / f"replica-{index}.log",
                python=python,
            )
        )
    try:
        for replica in replicas:
            replica.spawn()
        await asyncio.gather(*(replica.ready() for replica in replicas))
        yield replicas
    finally:
        await asyncio.gather(*(replica.stop() for replica in replicas))
