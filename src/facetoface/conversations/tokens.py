"""The per-conversation callback token: the secret in the callback URL given to Tavus.

Only its SHA-256 is stored. A callback is compared by the hash of the token it presents, so
a comparison leaks at most a prefix of a hash, from which no token can be rebuilt.

Tokens given out since callback URLs are signed also carry an HMAC of the session's row id
(`CALLBACK_SIGNING_SECRET`): a forged callback is refused in memory, without a database round
trip; the stored hash is still checked in the statement that applies a genuine one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import uuid
from enum import StrEnum


def new_callback_token() -> str:
    """A fresh token (256 random bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def hash_callback_token(token: str) -> bytes:
    """The stored form of a callback token (SHA-256; the token itself is never stored)."""
    return hashlib.sha256(token.encode()).digest()


#: Separates a signed token's random part from its MAC (neither part can contain it).
_SIGNED = "."
#: 128 bits of HMAC-SHA256, base64url without padding.
_MAC_CHARS = 22


class TokenForm(StrEnum):
    """What a callback URL's token is, as far as can be told without the database."""

    signed = "signed"  # `<random>.<mac>`, the MAC of the row id verified
    legacy = "legacy"  # a token of a session started before callback URLs were signed
    forged = "forged"  # a signed form whose MAC is wrong, or neither form


def _mac(key: bytes, row_id: uuid.UUID) -> str:
    digest = hmac.new(key, b"facetoface-callback:" + row_id.bytes, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:_MAC_CHARS]


def signed_callback_token(key: bytes, row_id: uuid.UUID) -> str:
    """A fresh token for the callback URL of row `row_id`: 256 random bits, then the MAC of
    the row id, so a callback for a URL this service never gave out is refused in memory,
    before any database work. Its hash is stored like any token's, and checked too."""
    return f"{new_callback_token()}{_SIGNED}{_mac(key, row_id)}"


def token_form(key: bytes, row_id: uuid.UUID, token: str) -> TokenForm:
    """`signed` when the token carries a valid MAC of `row_id`, `legacy` when it has the
    shape of an unsigned token (older sessions), else `forged`. Constant-time comparison."""
    random_part, signed, mac = token.rpartition(_SIGNED)
    if not signed:
        return TokenForm.legacy if _LEGACY.fullmatch(token) else TokenForm.forged
    if not _LEGACY.fullmatch(random_part) or len(mac) != _MAC_CHARS:
        return TokenForm.forged
    return TokenForm.signed if hmac.compare_digest(mac, _mac(key, row_id)) else TokenForm.forged


#: `secrets.token_urlsafe(32)`: 43 characters of the URL-safe alphabet.
_LEGACY = re.compile(r"[A-Za-z0-9_-]{43}")
