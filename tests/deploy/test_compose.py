"""The one-host stack (deploy/compose/compose.yaml), built and run for real in Docker.

`make deploy-test` (not `make test`: it takes minutes). What it does, in order:

1. the Debian stand-ins for the official base images (`tests/deploy/base-images.sh`; kept
   by tag, so only a machine's first run builds them);
2. the service image with the README's command (`make image PYTHON_IMAGE=...`) and the
   PgBouncer image with compose's own build (`docker-compose build pgbouncer`), in parallel;
3. the stack with `docker-compose up`, with tests/deploy/compose.hostnet.yaml on top: host
   networking, every port on 127.0.0.1, PostgreSQL, Prometheus and Caddy from Debian's packages
   (the official images cannot be pulled here), and `facetoface tavus-sim` as Tavus. The
   stack's own `ports:` are dropped from a copy of compose.yaml, as Docker refuses port
   bindings with host networking. **Grafana is not started**: it is not in Debian and its
   image cannot be pulled here; test_compose_files.py checks its provisioning statically;
4. whole sessions through Caddy over HTTPS (the test trusts Caddy's local CA), callbacks from
   the simulator through Caddy too; then one replica is SIGKILLed mid-session and nothing is
   lost;
5. everything it made is removed: containers, volumes, networks, the images it built (the
   base images stay cached).

The service runs with `ENVIRONMENT=test`: production refuses the simulator's key (`sim-key`)
and an `http://` Tavus; in `test` the service accepts HS256 tokens signed with the configured
`SUPABASE_JWT_SECRET`, which this test signs itself (PyJWT). Phase timings go to
test-artifacts/deploy-test.md.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import re
import secrets
import shutil
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import yaml

from facetoface.config import LOCAL_ISSUER
from tests.deploy.tools import COMPOSE_DIR, ROOT, missing, require_tool

pytestmark = pytest.mark.deploy

PROJECT = "facetoface-deploytest"
APP_IMAGE = "facetoface-deploytest"
PGBOUNCER_IMAGE = "facetoface-deploytest-pgbouncer:latest"
BASE_IMAGE = "facetoface-test-base:bookworm"
OVERRIDE = ROOT / "tests" / "deploy" / "compose.hostnet.yaml"
# Every service but Grafana (see the module's docstring).
SERVICES = [
    "postgres",
    "migrate",
    "pgbouncer",
    "app-1",
    "app-2",
    "caddy",
    "prometheus",
    "tavus-sim",
]
SITE = "https://localhost:18443"
SIM = "http://127.0.0.1:18100"
PROMETHEUS = "http://127.0.0.1:19090"
REPORT = ROOT / "test-artifacts" / "deploy-test.md"


@dataclass
class Stack:
    """The running stack: how to drive it and what it was configured with."""

    workdir: Path
    compose: list[str]
    env: dict[str, str]
    jwt_secret: str
    timings: dict[str, str] = field(default_factory=dict)
    root_ca: Path | None = None
    user_id: str = ""

    def run(self, *args: str, timeout: float = 300, check: bool = True) -> str:
        """`docker-compose <args>` for this stack; its output."""
        result = subprocess.run(
            [*self.compose, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env,
            cwd=ROOT,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"docker-compose {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result.stdout

    def container(self, service: str) -> str:
        """The id of the service's container."""
        cid = self.run("ps", "-q", service).strip()
        assert cid, f"no container for {service}"
        return cid

    def inspect(self, service: str) -> dict[str, Any]:
        """`docker inspect` of the service's container."""
        out = _docker("inspect", self.container(service))
        data: list[dict[str, Any]] = json.loads(out)
        return data[0]

    def logs(self) -> str:
        """The last lines of every service's log, for failure messages."""
        return self.run("logs", "--no-color", "--tail", "40", check=False)[-12000:]

    def token(self, user_id: str) -> str:
        """An access token as the service accepts in `test`: HS256 with SUPABASE_JWT_SECRET,
        the constant local issuer (no SUPABASE_URL is configured)."""
        now = int(time.time())
        claims = {
            "iss": LOCAL_ISSUER,
            "aud": "authenticated",
            "sub": user_id,
            "role": "authenticated",
            "iat": now,
            "exp": now + 900,
            "session_id": str(uuid.uuid4()),
            "is_anonymous": False,
            "app_metadata": {"provider": "email", "providers": ["email"]},
        }
        return jwt.encode(claims, self.jwt_secret, algorithm="HS256")

    def tls(self) -> ssl.SSLContext:
        """Trusts Caddy's local root, and nothing else."""
        assert self.root_ca is not None
        return ssl.create_default_context(cafile=str(self.root_ca))

    def client(self, user_id: str) -> httpx.Client:
        """The API through Caddy over HTTPS, verified against Caddy's local root."""
        return httpx.Client(
            base_url=SITE,
            verify=self.tls(),
            headers={"Authorization": f"Bearer {self.token(user_id)}"},
            timeout=30,
        )


def _docker(*args: str, timeout: float = 120, check: bool = True) -> str:
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed: {result.stderr[-2000:]}")
    return result.stdout


@contextlib.contextmanager
def _docker_daemon() -> Iterator[None]:
    """A Docker daemon that answers: the running one, or one this test starts (with the vfs
    storage driver, which works wherever overlayfs is not allowed) and stops again."""
    require_tool("docker", "the compose stack cannot run", "Debian's docker.io")
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0:
        yield
        return
    dockerd = require_tool("dockerd", "the compose stack cannot run", "Debian's docker.io")
    log = (ROOT / "test-artifacts" / "dockerd.log").open("ab")
    process = subprocess.Popen(
        [dockerd, "--storage-driver=vfs"], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 60
        while subprocess.run(["docker", "info"], capture_output=True, check=False).returncode:
            if time.monotonic() > deadline or process.poll() is not None:
                missing("a Docker daemon", "the compose stack cannot run (see dockerd.log)")
            time.sleep(0.5)
        yield
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=30)
        log.close()


def _timed(timings: dict[str, str], name: str, started: float) -> None:
    timings[name] = f"{time.monotonic() - started:.1f} s"


def _write_config(workdir: Path) -> tuple[dict[str, str], str]:
    """The stack's two env files (as an operator fills them in from the examples), the
    Prometheus configuration for host networking and compose.yaml without `ports:`; the env
    file's values and the JWT secret."""
    jwt_secret = secrets.token_hex(32)
    values = {
        "POSTGRES_PASSWORD": secrets.token_hex(16),
        "APP_DB_PASSWORD": secrets.token_hex(24),
        "GRAFANA_ADMIN_PASSWORD": secrets.token_hex(16),
        "SITE_ADDRESS": "localhost:18443",
        "FACETOFACE_IMAGE": f"{APP_IMAGE}:latest",
        "FACETOFACE_ENV_FILE": str(workdir / "facetoface.env"),
        "POSTGRES_IMAGE": "facetoface-test-postgres:bookworm",
        "PROMETHEUS_IMAGE": "facetoface-test-prometheus:bookworm",
        "CADDY_IMAGE": "facetoface-test-caddy:bookworm",
        "PGBOUNCER_IMAGE": PGBOUNCER_IMAGE,
        "DEBIAN_IMAGE": BASE_IMAGE,
        "DEPLOY_TEST_DIR": str(workdir),
    }
    (workdir / ".env").write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    service = {
        # `test`, not `production`: production refuses the simulator's key (module docstring).
        "ENVIRONMENT": "test",
        "PUBLIC_BASE_URL": SITE,
        "TAVUS_API_KEY": "sim-key",
        "TAVUS_BASE_URL": f"{SIM}/v2",
        "TAVUS_DEFAULT_PERSONA_ID": "pcb7a34da5fe",
        "TAVUS_DEFAULT_REPLICA_ID": "r90bbd427f71",
        "SUPABASE_JWT_SECRET": jwt_secret,
        "DEPLOYMENT_NAME": "compose-test",
        # Private rooms as in production; the room closes 3 s after the user leaves.
        "SESSION_PRIVATE_ROOMS": "true",
        "SESSION_PARTICIPANT_LEFT_TIMEOUT_SECONDS": "3",
    }
    (workdir / "facetoface.env").write_text("".join(f"{k}={v}\n" for k, v in service.items()))

    prometheus = yaml.safe_load((COMPOSE_DIR / "prometheus" / "prometheus.yml").read_text())
    prometheus["global"]["scrape_interval"] = "2s"  # so the test sees a dead replica soon
    (job,) = prometheus["scrape_configs"]
    job["static_configs"] = [{"targets": ["127.0.0.1:18001", "127.0.0.1:18002"]}]
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(prometheus))

    compose = yaml.safe_load((COMPOSE_DIR / "compose.yaml").read_text())
    for definition in compose["services"].values():
        definition.pop("ports", None)  # host networking: Docker refuses port bindings
    compose = {k: v for k, v in compose.items() if not k.startswith("x-")}
    (workdir / "compose.yaml").write_text(yaml.safe_dump(compose, sort_keys=False))
    return values, jwt_secret


def _with_buildkit(env: dict[str, str]) -> dict[str, str]:
    """`env` with BuildKit for `make image` and compose's build where the client has it: on the
    vfs storage driver it is ~3x faster than the legacy builder, which runs a container (a
    copy of the whole root filesystem) for every instruction, LABEL included. A `docker` with
    buildx uses BuildKit anyway; Docker clients before 23 (Debian's docker.io: /usr/bin/docker)
    have it built in; with neither, the legacy builder it is."""

    def works(*command: str) -> bool:
        return subprocess.run(command, capture_output=True, env=env, check=False).returncode == 0

    if works("docker", "buildx", "version"):
        return env
    client = shutil.which("docker", path="/usr/bin")
    if client is None or shutil.which("docker", path=env["PATH"]) == client:
        return env
    version = subprocess.run(
        [client, "version", "--format", "{{.Client.Version}}"], capture_output=True, text=True
    ).stdout
    if not re.match(r"(1\d|2[0-2])\.", version):
        return env
    return env | {
        "PATH": f"/usr/bin:{env['PATH']}",
        "DOCKER_BUILDKIT": "1",
        "COMPOSE_DOCKER_CLI_BUILD": "1",
    }


def _build_images(stack: Stack) -> None:
    """The service image (the README's `make image`) and PgBouncer's (compose's own build).
    One after the other: on two cores, building both at once was slower than in turn."""
    env = _with_buildkit(stack.env)
    stack.timings["builder"] = "BuildKit" if "DOCKER_BUILDKIT" in env else "legacy"
    for name, command in (
        (
            "service image (make image)",
            ["make", "image", f"IMAGE={APP_IMAGE}", f"PYTHON_IMAGE={BASE_IMAGE}"],
        ),
        ("PgBouncer image (docker-compose build)", [*stack.compose, "build", "pgbouncer"]),
    ):
        started = time.monotonic()
        built = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500, check=False
        )
        assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-4000:]
        _timed(stack.timings, name, started)
    size = _docker("image", "inspect", "--format", "{{.Size}}", f"{APP_IMAGE}:latest").strip()
    stack.timings["service image size"] = f"{int(size) / 1e6:.0f} MB"


def _wait_healthy(stack: Stack, timeout: float = 240) -> None:
    """Until migrate has exited 0 and every other service's container is healthy."""
    deadline = time.monotonic() + timeout
    while True:
        states = {service: stack.inspect(service)["State"] for service in SERVICES}
        migrate = states.pop("migrate")
        if migrate["Status"] == "exited":
            assert migrate["ExitCode"] == 0, stack.logs()
        pending = {
            service: state.get("Health", {}).get("Status", state["Status"])
            for service, state in states.items()
            if state.get("Health", {}).get("Status") != "healthy"
        }
        if not pending and migrate["Status"] == "exited":
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not healthy in {timeout} s: {pending}\n{stack.logs()}")
        time.sleep(1)


def _remove_built_images() -> None:
    """The images this run built, and the builder stages' leftovers (labelled by the
    Dockerfile); the cached base images stay."""
    _docker("image", "rm", f"{APP_IMAGE}:latest", PGBOUNCER_IMAGE, check=False, timeout=300)
    names = _docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", APP_IMAGE, check=False)
    for name in names.split():
        _docker("image", "rm", name, check=False, timeout=300)
    # The legacy builder leaves its builder stage as an untagged image (labelled by the
    # Dockerfile); BuildKit leaves build cache instead.
    builder = "label=dev.facetoface.stage=builder"
    _docker("image", "prune", "--force", "--filter", builder, check=False, timeout=300)
    _docker("builder", "prune", "--force", check=False, timeout=300)


def _write_report(timings: dict[str, str]) -> None:
    REPORT.parent.mkdir(exist_ok=True)
    rows = "".join(f"| {name} | {value} |\n" for name, value in timings.items())
    REPORT.write_text(
        "# make deploy-test\n\n"
        "Grafana NOT started (not in Debian, no registry here): provisioning checked "
        "statically.\n\n| phase | time |\n|---|---|\n" + rows
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The stack, built and started; torn down (containers, volumes, built images) after."""
    for tool, hint in (
        ("docker-compose", "Debian's docker-compose"),
        ("mmdebstrap", "Debian's mmdebstrap"),
        ("make", "Debian's make"),
    ):
        require_tool(tool, "the compose stack cannot be built and run", hint)
    workdir = tmp_path_factory.mktemp("compose")
    values, jwt_secret = _write_config(workdir)
    # Only what compose needs from this environment: a variable exported in the shell would
    # override the env file (compose's precedence) and test something else.
    env = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME"} or k.startswith("DOCKER_")}
    compose = ["docker-compose", "--project-name", PROJECT]
    compose += ["--project-directory", str(COMPOSE_DIR), "--env-file", str(workdir / ".env")]
    compose += ["--file", str(workdir / "compose.yaml"), "--file", str(OVERRIDE)]
    stack = Stack(workdir=workdir, compose=compose, env=env, jwt_secret=jwt_secret)
    assert values["FACETOFACE_IMAGE"].startswith(APP_IMAGE)
    total = time.monotonic()
    with _docker_daemon():
        started = time.monotonic()
        base = subprocess.run(
            [str(ROOT / "tests" / "deploy" / "base-images.sh")],
            capture_output=True,
            text=True,
            timeout=2400,
            check=False,
        )
        assert base.returncode == 0, base.stdout + base.stderr
        _timed(
            stack.timings,
            "base images (" + ("cached" if "built" not in base.stdout else "built") + ")",
            started,
        )
        try:
            _build_images(stack)
            started = time.monotonic()
            stack.run("up", "--detach", "--no-build", *SERVICES, timeout=600)
            _wait_healthy(stack)
            _timed(stack.timings, "docker-compose up until all healthy", started)
            root = stack.run(
                "exec", "-T", "caddy", "cat", "/data/caddy/pki/authorities/local/root.crt"
            )
            stack.root_ca = workdir / "caddy-root.crt"
            stack.root_ca.write_text(root)
            # As the owner (the replicas' own role may not write profiles of others): in a
            # replica's container, which saves starting one more.
            owner = (
                f"postgresql://postgres:{values['POSTGRES_PASSWORD']}@127.0.0.1:15432/facetoface"
            )
            seeded = stack.run(
                "exec", "-T", "-e", f"DATABASE_URL={owner}", "app-1", "facetoface", "seed-demo"
            )
            found = re.search(r"maria@example\.com\s+([0-9a-f-]{36})", seeded)
            assert found, seeded
            stack.user_id = found.group(1)
            yield stack
        finally:
            started = time.monotonic()
            stack.run("stop", "--timeout", "20", timeout=600, check=False)
            _timed(stack.timings, "docker-compose stop", started)
            started = time.monotonic()
            stack.run(
                "down", "--volumes", "--remove-orphans", "--timeout", "20", timeout=600, check=False
            )
            _timed(stack.timings, "docker-compose down -v", started)
            left = _docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={PROJECT}")
            started = time.monotonic()
            _remove_built_images()
            _timed(stack.timings, "built images removed", started)
            _timed(stack.timings, "whole run (setup, tests, teardown)", total)
            _write_report(stack.timings)
            assert not left.strip(), f"containers left behind: {left}"


def _wait_for(what: str, probe: Any, timeout: float = 60) -> Any:
    """Poll `probe()` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.25)


def _session(client: httpx.Client, session_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/sessions/{session_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _events(session: dict[str, Any]) -> dict[str, str]:
    return {event["event_type"]: event["outcome"] for event in session.get("events") or []}


def _when(stamp: str) -> datetime:
    """Docker's RFC 3339 time (nanoseconds, their trailing zeros dropped) as a datetime."""
    head, _, fraction = stamp.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(fraction + '000000')[:6]}")


def test_the_stack_starts_in_health_gated_order_and_runs_least_privileged(stack: Stack) -> None:
    states = {service: stack.inspect(service)["State"] for service in SERVICES}
    started = {service: _when(state["StartedAt"]) for service, state in states.items()}
    migrate = states["migrate"]
    assert (migrate["Status"], migrate["ExitCode"]) == ("exited", 0)
    # The replicas started only after the migration step finished, and Caddy after them.
    for replica in ("app-1", "app-2"):
        assert started[replica] >= _when(migrate["FinishedAt"])
        assert started["caddy"] > started[replica]
    assert started["migrate"] > started["postgres"]
    assert started["pgbouncer"] > started["postgres"]
    assert "login role facetoface_app: ready" in stack.run("logs", "--no-color", "migrate")

    replica = stack.inspect("app-1")
    assert replica["Config"]["User"] == "10001:10001"
    assert replica["HostConfig"]["ReadonlyRootfs"] is True
    assert replica["HostConfig"]["CapDrop"] == ["ALL"]
    image = json.loads(_docker("image", "inspect", f"{APP_IMAGE}:latest"))[0]["Config"]
    assert image["Labels"]["org.opencontainers.image.version"]
    assert not any(entry.startswith("ENVIRONMENT=") for entry in image["Env"])
    assert image["Entrypoint"] == ["facetoface"]
    assert image["Cmd"] == ["serve", "--host", "0.0.0.0"]


def test_doctor_passes_in_a_replica_connected_as_the_login_role(stack: Stack) -> None:
    out = stack.run("exec", "-T", "app-1", "facetoface", "doctor", "--json")
    report = json.loads(out[out.index("{") :])
    checks = {check["id"]: check for check in report["checks"]}
    assert report["ok"], json.dumps(report, indent=2)
    assert checks["database_role"]["status"] == "pass", checks["database_role"]
    assert "facetoface_app" in checks["database_role"]["detail"]
    assert checks["row_level_security"]["status"] == "pass"


def test_prometheus_has_the_alert_rules_and_scrapes_both_replicas(stack: Stack) -> None:
    rules = httpx.get(f"{PROMETHEUS}/api/v1/rules", timeout=10).json()["data"]["groups"]
    assert [group["name"] for group in rules] == ["facetoface"]
    assert len(rules[0]["rules"]) >= 10

    def both_up() -> bool:
        result = httpx.get(f"{PROMETHEUS}/api/v1/query", params={"query": "up"}, timeout=10)
        up = {r["metric"]["instance"]: r["value"][1] for r in result.json()["data"]["result"]}
        return up == {"127.0.0.1:18001": "1", "127.0.0.1:18002": "1"}

    _wait_for("both replicas scraped", both_up, timeout=30)
    # ... on the compose network only: through Caddy, /metrics is not there.
    assert httpx.get(f"{SITE}/metrics", verify=stack.tls()).status_code == 404


def test_a_whole_session_through_the_proxy_over_https(stack: Stack) -> None:
    started_at = time.monotonic()
    with stack.client(stack.user_id) as api, httpx.Client(base_url=SIM, timeout=30) as sim:
        assert api.get("/readyz").json()["status"] == "ok"
        started = api.post("/v1/sessions")
        assert started.status_code == 201, started.text
        session = started.json()
        room = session["conversation_id"]
        assert session["meeting_token"]  # a private room, as in production
        joined = sim.post(
            f"/rooms/{room}/join", json={"name": "Maria", "token": session["meeting_token"]}
        )
        assert joined.status_code == 200, joined.text
        _wait_for(
            "replica_joined through Caddy",
            lambda: _session(api, session["id"])["status"] == "in_progress",
        )
        reply = sim.post(f"/rooms/{room}/say", json={"text": "Work is piling up"}).json()
        assert "goal" in reply["reply"]
        ended = api.post(f"/v1/sessions/{session['id']}/end")
        assert ended.status_code == 200, ended.text
        done = _wait_for(
            "the transcript through Caddy",
            lambda: (s := _session(api, session["id"]))["transcript"] and s,
        )
    assert done["status"] == "completed"
    assert done["shutdown_reason"] == "end_conversation_endpoint_hit"
    assert _events(done)["system.replica_joined"] == "applied"
    assert _events(done)["system.shutdown"] == "applied"
    assert _events(done)["application.transcription_ready"] == "applied"
    assert [t["content"] for t in done["transcript"] if t["role"] == "user"] == [
        "Work is piling up"
    ]
    stack.timings["a whole session through Caddy"] = f"{time.monotonic() - started_at:.1f} s"


def test_a_replica_killed_mid_session_loses_nothing(stack: Stack) -> None:
    started_at = time.monotonic()
    with stack.client(stack.user_id) as api, httpx.Client(base_url=SIM, timeout=30) as sim:
        started = api.post("/v1/sessions")
        assert started.status_code == 201, started.text
        session = started.json()
        room = session["conversation_id"]
        sim.post(f"/rooms/{room}/join", json={"name": "Maria", "token": session["meeting_token"]})
        sim.post(f"/rooms/{room}/say", json={"text": "I slept badly"})
        _wait_for("in_progress", lambda: _session(api, session["id"])["status"] == "in_progress")

        # SIGKILL, not a graceful stop: the replica drains nothing.
        _docker("kill", stack.container("app-1"))
        # Every request right after finds a replica: Caddy retries the dead one's refused
        # connections on the other.
        answers = collections.Counter(
            api.get(f"/v1/sessions/{session['id']}").status_code for _ in range(20)
        )
        assert answers == {200: 20}, answers

        # The call goes on at Tavus; the user speaks, leaves, and the room closes 3 s later:
        # the shutdown and transcript callbacks must reach the surviving replica.
        sim.post(f"/rooms/{room}/say", json={"text": "My manager emails me at midnight"})
        sim.post(f"/rooms/{room}/leave", json={})
        done = _wait_for(
            "the session to end through callbacks alone",
            lambda: (s := _session(api, session["id"]))["transcript"] and s,
        )
        conversations = sim.get("/_sim/conversations").json()
        # And a new session starts and ends normally with one replica.
        again = api.post("/v1/sessions")
        assert again.status_code == 201, again.text
        assert api.post(f"/v1/sessions/{again.json()['id']}/end").status_code == 200

    assert done["status"] == "completed"
    assert done["shutdown_reason"] == "participant_left_timeout"
    events = _events(done)
    assert events["system.shutdown"] == "applied"
    assert events["application.transcription_ready"] == "applied"
    said = [t["content"] for t in done["transcript"] if t["role"] == "user"]
    assert said == ["I slept badly", "My manager emails me at midnight"]
    # Nothing left running (billing) at Tavus.
    assert conversations["active"] == 0, conversations
    assert all(c["status"] == "ended" for c in conversations["conversations"])

    # Prometheus sees what happened (the input of the FacetofaceDown alert).
    def app_1_down() -> bool:
        result = httpx.get(f"{PROMETHEUS}/api/v1/query", params={"query": "up"}, timeout=10)
        up = {r["metric"]["instance"]: r["value"][1] for r in result.json()["data"]["result"]}
        return up == {"127.0.0.1:18001": "0", "127.0.0.1:18002": "1"}

    _wait_for("Prometheus to see app-1 down", app_1_down, timeout=30)
    stack.timings["the kill scenario"] = f"{time.monotonic() - started_at:.1f} s"


def test_grafana_is_not_started_here() -> None:
    pytest.skip(
        "GRAFANA NOT STARTED: Grafana is not in Debian and its image (grafana/grafana) cannot be "
        "pulled here; its provisioning and dashboard are checked by test_compose_files.py"
    )


def test_every_locked_pin_has_a_wheel_for_the_default_python_image(tmp_path: Path) -> None:
    """The test builds on Debian's Python 3.11; the Dockerfile's default base is Python 3.12.
    The build installs wheels only: every pin of requirements/main.txt must have a CPython
    3.12 x86_64 wheel with a locked hash."""
    default = re.search(
        r"^ARG PYTHON_IMAGE=python:(\d+)\.(\d+)-", (ROOT / "Dockerfile").read_text(), re.M
    )
    assert default, "the Dockerfile names no official Python image by default"
    version = f"{default.group(1)}.{default.group(2)}"
    abi = f"cp{default.group(1)}{default.group(2)}"
    platforms = ("manylinux_2_17", "manylinux2014", "manylinux_2_28", "manylinux_2_5", "linux")
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(tmp_path)]
    command += ["--no-deps", "--require-hashes", "--only-binary=:all:", "--implementation", "cp"]
    command += ["--python-version", version, "--abi", abi, "--abi", "abi3", "--abi", "none"]
    command += [arg for platform in platforms for arg in ("--platform", f"{platform}_x86_64")]
    command += ["-r", str(ROOT / "requirements" / "main.txt")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if result.returncode != 0 and re.search(
        r"Max retries|NewConnectionError|Temporary failure", result.stderr
    ):
        missing("PyPI", f"the Python {version} wheels cannot be checked: {result.stderr[-300:]}")
    assert result.returncode == 0, result.stderr[-3000:]
    pins = [
        line
        for line in (ROOT / "requirements" / "main.txt").read_text().splitlines()
        if re.match(r"^[a-z0-9]", line)
    ]
    assert len(list(tmp_path.glob("*.whl"))) == len(pins)
