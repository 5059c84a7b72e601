"""The development token issuer: HS256 tokens shaped like Supabase's user access tokens."""

from __future__ import annotations

import time
import uuid

import jwt

from facetoface.config import DEV_JWT_SECRET, Settings

#: The development operator's user id (`facetoface token --operator`, the console's sign-in).
DEV_OPERATOR_ID = uuid.UUID("00000000-0000-4000-8000-0000000000ff")


def dev_issuer_active(settings: Settings) -> bool:
    """True in development with the built-in HS256 secret: the only case in which tokens may
    be minted without a command line (the console's demo sign-in)."""
    return (
        settings.is_development
        and settings.supabase_jwt_secret is None
        and settings.hs256_secret == DEV_JWT_SECRET
    )


def mint_token(
    settings: Settings,
    *,
    user_id: uuid.UUID,
    email: str | None = None,
    ttl_seconds: int | None = None,
    is_anonymous: bool = False,
    operator: bool = False,
) -> str:
    """A signed access token for `user_id`, verifiable by this service's HS256 path.

    `operator` adds `app_metadata.facetoface_role = "operator"` (the operators' API).
    """
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
        # As Supabase shapes it; only the server can set app_metadata.
        "app_metadata": {"provider": "email", "providers": ["email"]}
        | ({"facetoface_role": "operator"} if operator else {}),
    }
    return jwt.encode(claims, secret, algorithm="HS256")
