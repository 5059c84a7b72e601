"""The development token issuer: HS256 tokens shaped like Supabase's user access tokens."""

from __future__ import annotations

import time
import uuid

import jwt

from facetoface.config import Settings


def mint_token(
    settings: Settings,
    *,
    user_id: uuid.UUID,
    email: str | None = None,
    ttl_seconds: int | None = None,
    is_anonymous: bool = False,
) -> str:
    """A signed access token for `user_id`, verifiable by this service's HS256 path."""
    secret = settings.hs256_secret
    if secret is None:
        raise RuntimeError("no HS256 secret configured; tokens come from your auth provider")
    now = int(time.time())
    claims = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": str(user_id),
        "role": "authenticated",
        "iat": now,
        "exp": now + (ttl_seconds or settings.dev_token_ttl_seconds),
        "email": email,
        "aal": "aal1",
        "session_id": str(uuid.uuid4()),
        "is_anonymous": is_anonymous,
    }
    return jwt.encode(claims, secret, algorithm="HS256")
