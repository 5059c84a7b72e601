"""Test kit for the auth tests: signing keys, Supabase-shaped claims, forged tokens, a fake
clock and a real JWKS server (threaded `http.server` on 127.0.0.1)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ISSUER = "https://proj.supabase.co/auth/v1"
AUDIENCE = "authenticated"
#: The legacy Supabase "JWT secret" of the test project (signs HS256 user tokens + API keys).
HS256_SECRET = "test-project-legacy-jwt-secret-0123456789abcdef-0123456789abcdef"
JWKS_PATH = "/auth/v1/.well-known/jwks.json"
#: The JWKS cache settings of the `jwks` fixture (the service's defaults).
CACHE_SECONDS = 300
COOLDOWN_SECONDS = 30

#: Marks a claim to delete in `user_claims(...)`.
DROP: Any = object()


# --- keys ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str  # "ES256" or "RS256" (what the JWK advertises)
    private: Any  # EllipticCurvePrivateKey | RSAPrivateKey

    def public_jwk(self) -> dict[str, Any]:
        """The public JWK as Supabase publishes it (`kid`, `alg`, `use`, `key_ops`)."""
        public = self.private.public_key()
        if isinstance(public, ec.EllipticCurvePublicKey):
            data = ECAlgorithm.to_jwk(public, as_dict=True)
        else:
            data = RSAAlgorithm.to_jwk(public, as_dict=True)
        data.update(kid=self.kid, alg=self.alg, use="sig", key_ops=["verify"], ext=True)
        return data

    def public_pem(self) -> bytes:
        return bytes(
            self.private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def sign(
        self,
        claims: dict[str, Any],
        *,
        kid: str | None = None,
        alg: str | None = None,
        headers: dict[str, Any] | None = None,
        omit_kid: bool = False,
    ) -> str:
        header: dict[str, Any] = {} if omit_kid else {"kid": kid if kid is not None else self.kid}
        header.update(headers or {})
        return jwt.encode(claims, self.private, algorithm=alg or self.alg, headers=header)


def ec_key(kid: str, curve: ec.EllipticCurve | None = None) -> SigningKey:
    return SigningKey(kid, "ES256", ec.generate_private_key(curve or ec.SECP256R1()))


def rsa_key(kid: str) -> SigningKey:
    return SigningKey(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))


@dataclass(frozen=True)
class Keys:
    ec: SigningKey  # the project's current ES256 key
    rsa: SigningKey  # an RS256 key also published
    ec_next: SigningKey  # a standby key, published later (rotation)
    attacker_ec: SigningKey  # nobody publishes this one
    attacker_p384: SigningKey


def make_keys() -> Keys:
    return Keys(
        ec=ec_key("ec-current"),
        rsa=rsa_key("rsa-legacy"),
        ec_next=ec_key("ec-next"),
        attacker_ec=ec_key("attacker"),
        attacker_p384=SigningKey("attacker-384", "ES384", ec.generate_private_key(ec.SECP384R1())),
    )


# --- claims and forged tokens --------------------------------------------------------------
def user_claims(**overrides: Any) -> dict[str, Any]:
    """Claims shaped like a Supabase user access token; `DROP` deletes a claim."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": str(uuid.uuid4()),
        "aud": AUDIENCE,
        "exp": now + 3600,
        "iat": now,
        "email": "ada@example.com",
        "phone": "",
        "app_metadata": {"provider": "email", "providers": ["email"]},
        "user_metadata": {"email_verified": True},
        "role": "authenticated",
        "aal": "aal1",
        "amr": [{"method": "password", "timestamp": now}],
        "session_id": str(uuid.uuid4()),
        "is_anonymous": False,
    }
    for name, value in overrides.items():
        if value is DROP:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


def api_key_claims(role: str) -> dict[str, Any]:
    """Claims of a legacy Supabase `anon` / `service_role` API key: no `sub`, no `aud`."""
    now = int(time.time())
    return {
        "iss": "supabase",
        "ref": "proj",
        "role": role,
        "iat": now,
        "exp": now + 10 * 365 * 86400,
    }


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64json(value: Any) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def forge(
    header: Any, claims: Any, *, hmac_key: bytes | None = None, signature: bytes = b""
) -> str:
    """A compact JWS built by hand (PyJWT refuses to HMAC-sign with a PEM, an attacker won't)."""
    signing_input = f"{b64json(header)}.{b64json(claims)}"
    if hmac_key is not None:
        signature = hmac.new(hmac_key, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


# --- clock ---------------------------------------------------------------------------------
class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, start: float = 10_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# --- JWKS server ---------------------------------------------------------------------------
class JwksServer:
    """A real HTTP server on 127.0.0.1 (threaded `http.server`) serving `document` at
    `JWKS_PATH`. It counts fetches and can rotate keys, fail, hang (`gate`) or stop.

    One instance serves a whole test session (`reset()` between tests): starting and stopping
    uvicorn costs ~0.2 s a test, too slow for ~150 tests; a test that stops the server makes
    its own instance."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.reset()

    def reset(self) -> None:
        self.document: Any = {"keys": []}
        #: 200 serves `document`; 302 redirects; anything else answers that status.
        self.status = 200
        #: Served verbatim (with status 200) instead of `document` when set.
        self.raw_body: bytes | None = None
        #: When set, JWKS requests block until it is set (to hold a fetch in flight).
        self.gate: threading.Event | None = None
        self.fetches = 0
        self.paths: list[str] = []

    def publish(self, *keys: SigningKey | dict[str, Any]) -> None:
        self.document = {"keys": [k.public_jwk() if isinstance(k, SigningKey) else k for k in keys]}

    @property
    def base_url(self) -> str:
        assert self.port, "start() the server first"
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return self.base_url + JWKS_PATH

    def _respond(self) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) for one JWKS request; runs on a handler thread."""
        with self._lock:
            self.fetches += 1
        gate = self.gate
        if gate is not None:
            gate.wait(timeout=5)
        if self.status == 302:
            return 302, {"Location": "/elsewhere/jwks.json"}, b""
        if self.status != 200:
            return self.status, {"Content-Type": "text/plain"}, b"upstream exploded"
        body = self.raw_body
        if body is None:
            body = json.dumps(self.document).encode()
        return 200, {"Content-Type": "application/json", "Cache-Control": "max-age=600"}, body

    def start(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with owner._lock:
                    owner.paths.append(self.path)
                if self.path == JWKS_PATH:
                    status, headers, body = owner._respond()
                else:
                    status, headers, body = 404, {}, b""
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving: later fetches get `connection refused`."""
        if self.gate is not None:
            self.gate.set()
        if self._httpd is not None and self._thread is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join()
            self._httpd = self._thread = None
