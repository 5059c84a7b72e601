"""Fuzzing the running service from its own OpenAPI document (schemathesis and hypothesis).

The service under uvicorn on a real socket (the fuzzers are blocking clients, in a thread),
talking to the Tavus simulator:

- `test_schemathesis_finds_nothing`: `st run --checks all` (in-process, in a thread) with a real
  user's token on every user-facing operation (the operators' `/v1/ops/*` answer such a token
  403 whatever it sends; tests/console/test_ops_api.py covers their refusals), through every
  phase (examples, coverage: boundary values, missing headers, unsupported methods;
  fuzzing: positive and negative data; stateful: start → read / end / delete over the
  inferred links). It fails on a 5xx, an undocumented status code or content type, a body
  that breaks its response schema, invalid data accepted or valid data refused, and on an
  operation that declares bearer auth but answers without it (`ignored_auth`).
- `test_user_operations_require_a_token`: every `/v1/sessions*` and `/v1/me/*` operation
  declares the bearer scheme and answers 401 to a missing, malformed, expired or forged
  token, and to fuzzed (also invalid) parameters without a token: authentication runs first.
- `test_callback_bodies_never_break_a_session`: arbitrary bodies on a fresh session's *real*
  callback URL get 200 or 400 — never a 5xx; what is not JSON (NaN, ±Infinity) is a 400 on
  every database, what PostgreSQL cannot store (U+0000, lone surrogates) is stored with
  U+FFFD in its place; and the session, the list and the context stay readable.
  Bodies that once broke the service are replayed first (`REGRESSIONS`).
- `test_callback_url_fuzz`: the callback route's path carries a secret: fuzzed paths get 404
  (400 when the body is no callback at all) and store nothing; bodies over the limit 413.

Every run is seeded (`SEED`, hypothesis's `derandomize`): the same cases each time, so CI
is stable and a failure reproduces; `st run`'s report prints a curl command for each. The
example counts are small on purpose (the whole suite runs in about two minutes): the
coverage phase's boundary values do not depend on them, and `REGRESSIONS` always run.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from datetime import UTC
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import jwt
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from facetoface.conversations.events import KNOWN, SHUTDOWN, TRANSCRIPT
from tests.conftest import RunningService
from tests.support.factories import create_persona, create_user

SEED = 20261125
#: Per operation in the fuzzing and stateful phases.
MAX_EXAMPLES = 5

#: The operations that need a caller. The test also finds any added later by path.
USER_OPERATIONS = {
    ("POST", "/v1/sessions"),
    ("GET", "/v1/sessions"),
    ("GET", "/v1/sessions/{session_id}"),
    ("POST", "/v1/sessions/{session_id}/end"),
    ("DELETE", "/v1/sessions/{session_id}"),
    ("GET", "/v1/me/context"),
    ("GET", "/v1/me/preferences"),
    ("PUT", "/v1/me/preferences"),
}
CALLBACK_OPERATION = ("POST", "/v1/callbacks/tavus/{mentor_conversation_id}/{token}")
USER_PREFIXES = ("/v1/sessions", "/v1/me/")
#: Operators' operations: a user's token gets 403 on each, whatever else it sends.
OPERATOR_PATHS = "^/v1/ops/"


@pytest.fixture
def service_overrides() -> dict[str, Any]:
    # The fuzzer threads compete with the simulator's for the interpreter: patient Tavus calls.
    return {}


def _config(token: str) -> str:
    """schemathesis.toml for the run (https://schemathesis.readthedocs.io/en/stable/)."""
    return f"""
seed = {SEED}
continue-on-failure = true
headers = {{ Authorization = "Bearer {token}" }}

[cache]
enabled = false

[generation]
database = "none"
max-examples = {MAX_EXAMPLES}

# A cursor is opaque: a well-formed string this API never issued is rightly a 400.
[[operations]]
include-name = "GET /v1/sessions"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "404"]

# The same for the goal-change log's cursor.
[[operations]]
include-name = "GET /v1/me/goal-changes"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "404"]

# The fuzzer reuses one Idempotency-Key with another body: that is rightly a 422 (the key is
# answered before anything else, so the retry of a completed start always gets its session).
[[operations]]
include-name = "POST /v1/sessions"
checks.positive_data_acceptance.expected-statuses = [
  "2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx",
]

[[operations]]
include-name = "POST /functions/v1/start-tavus-session"
checks.positive_data_acceptance.expected-statuses = [
  "2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx",
]
"""


# `st run` opens the report's path once to check it can, and leaves that file to the collector.
@pytest.mark.filterwarnings("ignore:unclosed file:ResourceWarning")
async def test_schemathesis_finds_nothing(service: RunningService, tmp_path: Path) -> None:
    user_id = await create_user(service.db)
    await create_persona(service.db, user_id)
    config = tmp_path / "schemathesis.toml"
    config.write_text(_config(service.token(user_id)))
    report = tmp_path / "report.json"
    arguments = [
        "--config-file",
        str(config),
        "--no-color",
        "run",
        f"{service.url}/openapi.json",
        "--exclude-path-regex",
        OPERATOR_PATHS,
        "--checks",
        "all",
        # A replayed start (same Idempotency-Key) answers the first start's 201 even after
        # that session was deleted, so "created, then not found" is expected there;
        # `use_after_free` still checks that a deleted session stays gone.
        "--exclude-checks",
        "ensure_resource_availability",
        "--workers",
        "1",
        "--report",
        "json",
        "--report-json-path",
        str(report),
    ]

    from schemathesis.cli import schemathesis as schemathesis_cli  # lazily: see _fuzz_without_token

    result = await asyncio.to_thread(CliRunner().invoke, schemathesis_cli, arguments)
    output = result.output

    assert result.exit_code == 0, (output, result.exception)
    summary = json.loads(report.read_text())
    assert summary["stop_reason"] == "completed", output
    assert summary["complete"], output
    assert summary["failures"] == [], output
    assert summary["errors"] == [], output
    # It really ran: every operation, every phase but `examples` (the document has none),
    # and valid requests reached the handlers of every user operation.
    operations = summary["operations"]
    assert operations["tested"] == operations["selected"] >= len(USER_OPERATIONS) + 1, output
    phases = {name: phase["status"] for name, phase in summary["phases"].items()}
    assert phases == {
        "examples": "skip",
        "coverage": "success",
        "fuzzing": "success",
        "stateful": "success",
    }, output
    for method, path in USER_OPERATIONS:
        rates = summary["valid_rates"][f"{method} {path}"]
        accepted = sum(phase["accepted"] for phase in rates.values())
        assert accepted > 0, (method, path, rates)


# --- authentication ----------------------------------------------------------------------
def _user_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        if path.startswith(USER_PREFIXES)
        for method in item
        if method in {"get", "put", "post", "patch", "delete"}
    }


def _forged_tokens(service: RunningService, user_id: uuid.UUID) -> dict[str, str]:
    """Authorization header values that must all be refused, by name."""
    valid = service.token(user_id)
    claims = jwt.decode(valid, options={"verify_signature": False})
    header, payload, _signature = valid.split(".")
    secret = service.settings.hs256_secret or ""
    later = int(time.time()) + 3600
    none_header = jwt.utils.base64url_encode(b'{"alg":"none","typ":"JWT"}').decode()
    return {
        "empty": "",
        "bearer without token": "Bearer",
        "garbage": "Bearer not-a-jwt",
        "basic": "Basic dXNlcjpwYXNzd29yZA==",
        "valid token, other scheme": f"Token {valid}",
        "valid token, no scheme": valid,
        "expired": f"Bearer {service.token(user_id, ttl_seconds=-3600)}",
        "other secret": "Bearer " + jwt.encode(claims, "s" * 40, algorithm="HS256"),
        "alg none": f"Bearer {none_header}.{payload}.",
        "no signature": f"Bearer {header}.{payload}.",
        "not yet valid": "Bearer "
        + jwt.encode({**claims, "nbf": later, "iat": later}, secret, algorithm="HS256"),
        "anon audience": "Bearer " + jwt.encode({**claims, "aud": "anon"}, secret, "HS256"),
        "foreign issuer": "Bearer "
        + jwt.encode({**claims, "iss": "https://evil.example/auth/v1"}, secret, "HS256"),
        "no subject": "Bearer "
        + jwt.encode({k: v for k, v in claims.items() if k != "sub"}, secret, "HS256"),
    }


async def test_user_operations_require_a_token(service: RunningService) -> None:
    user_id = await create_user(service.db)
    document = (await service.client.get("/openapi.json")).json()
    operations = _user_operations(document)
    assert operations >= USER_OPERATIONS
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for method, path in operations:
        spec = document["paths"][path][method.lower()]
        assert spec.get("security") == [{"HTTPBearer": []}], (method, path)
        assert "401" in spec["responses"], (method, path)
    callback = document["paths"][CALLBACK_OPERATION[1]]["post"]
    assert "security" not in callback  # its secret is in the path

    forged = _forged_tokens(service, user_id)
    for method, path in sorted(operations):
        url = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)
        for name, value in forged.items():
            headers = {"Authorization": value} if value else {}
            response = await service.client.request(
                method, url, headers=headers, json={} if method == "POST" else None
            )
            assert response.status_code == 401, (method, path, name, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert response.json()["code"] == "unauthorized"
        # A token anywhere but the Authorization header does not count.
        response = await service.client.request(
            method,
            url,
            params={"access_token": service.token(user_id)},
            headers={"Cookie": f"sb-access-token={service.token(user_id)}"},
        )
        assert response.status_code == 401, (method, path, "query/cookie")

    # And without a token every fuzzed request is refused before its input is looked at.
    await asyncio.to_thread(_fuzz_without_token, service.url, sorted(operations))


def _fuzz_without_token(base_url: str, operations: list[tuple[str, str]]) -> None:
    # Imported here, not at the top: every xdist worker collects this module, and importing
    # schemathesis costs each of them a second of CPU for two tests one worker runs.
    import schemathesis
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    with httpx.Client(base_url=base_url, timeout=10) as client:
        for method, path in operations:
            operation = schema[path][method]
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

                @_settings(max_examples=3)
                @given(case=operation.as_strategy(generation_mode=mode))
                def check(case: Any) -> None:
                    kwargs = case.as_transport_kwargs(base_url=base_url)
                    headers = {
                        k: v
                        for k, v in (kwargs.get("headers") or {}).items()
                        if k.lower() != "authorization"
                    }
                    response = client.request(
                        kwargs["method"],
                        kwargs["url"],
                        params=kwargs.get("params"),
                        headers=headers,
                        content=_body(kwargs),
                    )
                    status, problem = response.status_code, response.json()
                    assert status in (400, 401, 404, 422), (status, kwargs, problem)
                    if status == 404:
                        # Only a path the router does not match (a fuzzed segment with "/").
                        assert problem["code"] == "not_found", problem
                    if status in (400, 422):
                        # FastAPI decodes a JSON body before any dependency runs: a body
                        # that is not JSON at all is refused first, and says nothing more.
                        assert problem["code"] in ("http_error", "validation_error"), problem
                        assert {e["type"] for e in problem.get("errors", [])} <= {"json_invalid"}

                check()


def _body(kwargs: dict[str, Any]) -> bytes | None:
    if "json" in kwargs:
        return json.dumps(kwargs["json"]).encode()
    data = kwargs.get("data")
    return data.encode() if isinstance(data, str) else data


def _settings(max_examples: int) -> Any:
    return settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=True,  # the same examples every run: no flaky CI, reproducible failures
        suppress_health_check=list(HealthCheck),
    )


# --- the callback route ------------------------------------------------------------------
#: Stands for the session's own Tavus conversation id in generated bodies.
CONVERSATION = "@@conversation@@"

JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()  # NaN and ±Infinity included: Python's json writes them, and reads them
    | st.text(max_size=30)  # U+0000 included: PostgreSQL cannot store it
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
ISO_TIMES = st.one_of(
    st.datetimes().map(lambda d: d.isoformat()),
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat().replace("+00:00", "Z")),
)
TIMESTAMPS = st.one_of(
    ISO_TIMES,
    ISO_TIMES,
    st.sampled_from(
        [
            "2026-11-25T10:00:05.000000Z",
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59-14:00",
            "2026-02-30T00:00:00Z",
            "",
        ]
    ),
    st.floats(),
    st.integers(min_value=-(2**64), max_value=2**64),
    JSON_VALUES,
)
TRANSCRIPT_ENTRIES = st.fixed_dictionaries(
    {},
    optional={
        "role": st.sampled_from(["user", "assistant", "system", "System", ""]) | JSON_VALUES,
        "content": st.text(max_size=40) | JSON_VALUES,
        "timestamp": TIMESTAMPS,
        "seconds_from_start": JSON_VALUES,
    },
)
PROPERTIES = st.fixed_dictionaries(
    {},
    optional={
        "transcript": st.lists(TRANSCRIPT_ENTRIES, max_size=4) | st.text(max_size=40) | JSON_VALUES,
        "shutdown_reason": st.sampled_from(["max_call_duration reached", " "]) | JSON_VALUES,
        "analysis": JSON_VALUES,
        "replica_id": JSON_VALUES,
        "s3_key": JSON_VALUES,
        "duration": JSON_VALUES,
        "storage_uri": JSON_VALUES,
        "error_message": JSON_VALUES,
        "name": JSON_VALUES,
    },
)
KNOWN_TYPES = st.sampled_from(sorted(KNOWN))
ENVELOPES = st.fixed_dictionaries(
    {
        "conversation_id": st.just(CONVERSATION),
        "event_type": st.one_of(KNOWN_TYPES, KNOWN_TYPES, KNOWN_TYPES, st.text(max_size=110)),
    },
    optional={
        "timestamp": TIMESTAMPS,
        "properties": st.one_of(PROPERTIES, PROPERTIES, PROPERTIES, JSON_VALUES),
        "message_type": JSON_VALUES,
        "webhook_url": JSON_VALUES,
    },
)
#: Transcripts are where most of the shape-dependent code is: sent often and on their own.
TRANSCRIPTS = st.fixed_dictionaries(
    {
        "conversation_id": st.just(CONVERSATION),
        "event_type": st.sampled_from(sorted(TRANSCRIPT | SHUTDOWN)),
        "properties": st.fixed_dictionaries(
            {"transcript": st.lists(TRANSCRIPT_ENTRIES | JSON_VALUES, min_size=1, max_size=4)}
        ),
    },
    optional={"timestamp": TIMESTAMPS},
)
#: Mostly plausible envelopes (to reach the effects), some anything-at-all.
BODIES = st.one_of(
    TRANSCRIPTS.map(json.dumps),
    ENVELOPES.map(json.dumps),
    ENVELOPES.map(json.dumps),
    ENVELOPES.map(json.dumps),
    ENVELOPES.map(lambda e: json.dumps({**e, "conversation_id": "other-conversation"})),
    JSON_VALUES.map(json.dumps),
    st.binary(max_size=64),
)


def _not_json(content: bytes) -> bool:
    """NaN or ±Infinity anywhere: Python reads them, but they are not JSON (refused: 400).
    U+0000 and lone surrogates are JSON that PostgreSQL cannot store: accepted, stored with
    U+FFFD in their place (conversations/storable.py)."""
    constants: list[str] = []
    try:
        json.loads(content, parse_constant=constants.append)
    except (ValueError, RecursionError):
        return False
    return bool(constants)


def _encode(body: str | bytes, conversation_id: str) -> bytes:
    if isinstance(body, bytes):
        return body
    return body.replace(json.dumps(CONVERSATION), json.dumps(conversation_id)).encode()


@pytest.mark.parametrize(
    "service_overrides",
    [{"session_start_limit": 100_000}],
    ids=["unlimited-starts"],
)
async def test_callback_bodies_never_break_a_session(service: RunningService) -> None:
    """Each example: a fresh session, one to three fuzzed callbacks on its real callback
    URL (200 or 400, never a 5xx), then the session, the list and the next session's
    context must still read (200), and the session must still end."""
    service.sim.set_config(callback_drop_probability=1.0)  # only the fuzzer's callbacks
    user_id = await create_user(service.db)
    outcomes = await asyncio.to_thread(_fuzz_callback_bodies, service, service.auth(user_id))
    # The fuzzer reached the effects, not only the parser.
    assert outcomes.get(200, 0) >= 15, outcomes
    assert outcomes.get(400, 0) >= 10, outcomes


def _start(client: httpx.Client, service: RunningService, auth: dict[str, str]) -> Any:
    started = client.post("/v1/sessions", headers=auth)
    assert started.status_code == 201, started.text
    session = started.json()
    conversation = service.sim.conversation(session["conversation_id"])
    path = conversation["callback_url"].removeprefix(service.url)
    assert path.startswith(f"/v1/callbacks/tavus/{session['mentor_conversation_id']}/")
    return session, path


def _fuzz_callback_bodies(service: RunningService, auth: dict[str, str]) -> dict[int, int]:
    outcomes: dict[int, int] = {}
    with httpx.Client(base_url=service.url, timeout=10) as client:

        @_settings(max_examples=20)
        @given(bodies=st.lists(BODIES, min_size=1, max_size=3))
        @_regressions
        def check(bodies: list[str | bytes]) -> None:
            session, path = _start(client, service, auth)
            try:
                send(session, path, bodies)
            finally:  # whatever happened, free the user for the next example
                ended = client.post(f"/v1/sessions/{session['id']}/end", headers=auth)
            assert ended.status_code == 200, ended.text

        def send(session: dict[str, Any], path: str, bodies: list[str | bytes]) -> None:
            for body in bodies:
                content = _encode(body, session["conversation_id"])
                response = client.post(path, content=content)
                outcomes[response.status_code] = outcomes.get(response.status_code, 0) + 1
                if response.status_code == 404:  # bound to another conversation: as if forged
                    assert b"other-conversation" in content, response.text
                elif _not_json(content):  # not JSON: refused
                    assert response.status_code == 400, response.text
                else:
                    assert response.status_code in (200, 400), response.text
            for read in (f"/v1/sessions/{session['id']}", "/v1/me/context"):
                response = client.get(read, headers=auth)
                assert response.status_code == 200, (read, response.text)

        check()
        response = client.get("/v1/sessions", params={"limit": 100}, headers=auth)
        assert response.status_code == 200, response.text
    return outcomes


def _envelope(event_type: str, **fields: Any) -> str:
    return json.dumps({"conversation_id": CONVERSATION, "event_type": event_type, **fields})


#: What this fuzzer found once (each a 500 then), always tried first.
REGRESSIONS: list[list[str | bytes]] = [
    # A number too large for a timestamp: OverflowError in the envelope's validator.
    [_envelope("system.replica_joined", timestamp=1e300)],
    [_envelope("system.replica_joined", timestamp=float("inf"))],
    # A valid ISO time with no UTC value: OverflowError when stored.
    [_envelope("system.shutdown", timestamp="0001-01-01T00:00:00+14:00")],
    [_envelope("system.replica_joined", timestamp="9999-12-31T23:59:59-14:00")],
    # NaN and U+0000: once a 500 from PostgreSQL's jsonb (now NaN is a 400, U+0000 stored as
    # U+FFFD).
    [_envelope("application.post_call_action_executed", properties={"x": float("nan")})],
    [_envelope("x.unknown", properties={"x": "\x00"})],
    # Deep nesting: RecursionError while parsing (or hashing, storing, serializing).
    *(
        [_envelope("x.unknown", properties={"deep": None}).replace("null", "[" * n + "]" * n)]
        for n in (100, 5000)
    ),
    # Transcript entries without a string role: stored, then GET /v1/sessions/{id} was a 500.
    [
        _envelope(
            "application.transcription_ready",
            properties={"transcript": [{"role": 5, "content": "hi"}, {"content": "hi"}]},
        )
    ],
]


def _regressions(test: Any) -> Any:
    for bodies in REGRESSIONS:
        test = example(bodies=bodies)(test)
    return test


async def test_callback_url_fuzz(service: RunningService) -> None:
    """Forged callback URLs get 404 (400 when the body is not a callback at all) and store
    nothing; bodies over the limit get 413, declared or streamed."""
    service.sim.set_config(callback_drop_probability=1.0)
    user_id = await create_user(service.db)
    auth = service.auth(user_id)
    await asyncio.to_thread(_fuzz_callback_urls, service, auth)
    detail = (await service.client.get("/v1/sessions", headers=auth)).json()["items"][0]
    assert detail["status"] == "started"  # no forged event applied
    events = (await service.client.get(f"/v1/sessions/{detail['id']}", headers=auth)).json()
    assert events["events"] == []


def _fuzz_callback_urls(service: RunningService, auth: dict[str, str]) -> None:
    max_body = service.settings.callback_max_body_bytes
    with httpx.Client(base_url=service.url, timeout=10) as client:
        session, path = _start(client, service, auth)
        row_id, token = path.rsplit("/", 2)[1:]

        @_settings(max_examples=25)
        @given(
            row=st.one_of(st.just(row_id), st.uuids().map(str), st.text(min_size=1)),
            secret=st.one_of(
                st.just(token),
                st.text(min_size=1),
                st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"),
            ),
            body=BODIES,
        )
        def forged(row: str, secret: str, body: str | bytes) -> None:
            if (row, secret) == (row_id, token):
                return
            url = f"/v1/callbacks/tavus/{quote(row, safe='')}/{quote(secret, safe='')}"
            response = client.post(url, content=_encode(body, session["conversation_id"]))
            # `..` segments can lead elsewhere: 404 or 405 there, never anything else.
            assert response.status_code in (400, 404, 405), (url, response.text)

        forged()

        # Bodies over the limit: declared, and streamed without a Content-Length.
        too_big = b"{" + b" " * max_body + b"}"
        assert client.post(path, content=too_big).status_code == 413

        def chunks() -> Any:
            for _ in range(max_body // 65536 + 2):
                yield b" " * 65536

        response = client.post(path, content=chunks())
        assert response.status_code == 413, response.text
