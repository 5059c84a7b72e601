"""The one place that knows how Tavus signs a tool call (`delivery.api` with `hmac` auth).

Tavus sends `X-Tavus-Signature: <hex>`, an HMAC computed with the secret shared when the tool
was registered. Its documentation does not spell out the input; we take it as HMAC-SHA256
over the raw request body, lowercase hex. If Tavus documents it differently, this module is
what changes.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

SIGNATURE_HEADER: Final = "X-Tavus-Signature"
#: A SHA-256 HMAC in hex; anything longer is not a signature (and is not compared).
_HEX_CHARS: Final = 64


def sign(secret: str, body: bytes) -> str:
    """The signature Tavus sends for `body`: lowercase hex HMAC-SHA256 with `secret`."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_valid(secret: str | None, body: bytes, signature: str | None) -> bool:
    """Whether `signature` signs `body` with `secret`, compared in constant time. False when
    the tools have no secret (they are off) or the header is missing or malformed."""
    if not secret or not signature or len(signature) != _HEX_CHARS:
        return False
    return hmac.compare_digest(sign(secret, body), signature.strip().lower())
