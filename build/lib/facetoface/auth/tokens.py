"""Access-token verification, the way a Supabase project issues tokens.

Two separate paths, never mixed in one `decode` (mixing HMAC and asymmetric algorithms is how
key-confusion attacks work): ES256/RS256 against the project's JWKS, and legacy HS256 against
`SUPABASE_JWT_SECRET` (in development, the local issuer's secret). Required claims: `sub`
(a UUID), `aud=authenticated`, `role=authenticated`, `exp`, `iss` = `<SUPABASE_URL>/auth/v1`.
The anon and service_role API keys are JWTs without `sub`/`aud`: they are rejected here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import jwt
import structlog

from facetoface.auth.jwks import JwksCache, JwksUnavailable, UnknownSigningKey
from facetoface.errors import ServiceUnavailable, Unauthorized

log = structlog.get_logger(__name__)

_REQUIRED = ["exp", "sub", "aud", "iss", "role"]


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    user_id: uuid.UUID
    claims: dict[str, Any]

    @property
    def email(self) -> str | None:
        value = self.claims.get("email")
        return value if isinstance(value, str) else None

    @property
    def is_anonymous(self) -> bool:
        return self.claims.get("is_anonymous") is True


class AuthUnavailable(ServiceUnavailable):
    code = "auth_unavailable"
    title = "Token keys unavailable"


class TokenVerifier:
    """Verifies bearer tokens; every failure is one `Unauthorized` (the reason is only logged)."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str = "authenticated",
        hs256_secret: str | None = None,
        jwks: JwksCache | None = None,
        leeway_seconds: int = 30,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self._secret = hs256_secret
        self._jwks = jwks
        self._leeway = leeway_seconds

    async def verify(self, token: str) -> VerifiedToken:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized("malformed token") from exc
        alg = header.get("alg")
        if not isinstance(alg, str):
            # PyJWT does not type-check `alg`; a list/object here is unhashable (TypeError → 500).
            raise Unauthorized("alg is not a string")
        if alg in {"ES256", "RS256"} and self._jwks is not None:
            kid = header.get("kid")
            if not isinstance(kid, str) or not kid:
                raise Unauthorized("asymmetric token without kid")
            try:
                jwk = await self._jwks.get_key(kid)
            except UnknownSigningKey as exc:
                raise Unauthorized("unknown kid") from exc
            except JwksUnavailable as exc:
                raise AuthUnavailable(
                    "Signing keys could not be fetched; try again shortly."
                ) from exc
            if jwk.algorithm_name != alg:
                raise Unauthorized("alg does not match the key")
            key: Any = jwk.key
            algorithms = [alg]
        elif alg == "HS256" and self._secret:
            key, algorithms = self._secret, ["HS256"]
        else:
            raise Unauthorized(f"algorithm {alg!r} not accepted")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self._leeway,
                options={"require": _REQUIRED},
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized(type(exc).__name__) from exc
        if claims.get("role") != "authenticated":
            raise Unauthorized("role is not authenticated")
        try:
            user_id = uuid.UUID(str(claims["sub"]))
        except ValueError as exc:
            raise Unauthorized("sub is not a UUID") from exc
        return VerifiedToken(user_id=user_id, claims=claims)
