"""The per-conversation callback token: the secret in the callback URL given to Tavus.

Only its SHA-256 is stored. A callback is compared by the hash of the token it presents, so
a comparison leaks at most a prefix of a hash, from which no token can be rebuilt.
"""

from __future__ import annotations

import hashlib
import secrets


def new_callback_token() -> str:
    """A fresh token (256 random bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def hash_callback_token(token: str) -> bytes:
    """The stored form of a callback token (SHA-256; the token itself is never stored)."""
    return hashlib.sha256(token.encode()).digest()
