"""What a Supabase project hands its frontend, for tests that call us the way the app does."""

from __future__ import annotations

import time

import jwt

from facetoface.config import Settings


def anon_key(settings: Settings) -> str:
    """A project anon key: a JWT with `role: anon` and no user, signed like the project's
    tokens. supabase-js sends it as `apikey`, and as the bearer when nobody is signed in."""
    secret = settings.hs256_secret
    assert secret is not None, "tests sign with the development HS256 secret"
    now = int(time.time())
    claims = {"iss": "supabase", "ref": "facetoface-tests", "role": "anon", "iat": now}
    return jwt.encode({**claims, "exp": now + 3600}, secret, algorithm="HS256")
