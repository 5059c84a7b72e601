"""FastAPI dependencies: the verified caller, as a database `Identity`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from facetoface.auth.tokens import TokenVerifier
from facetoface.db import Identity
from facetoface.errors import Unauthorized


async def authenticate(request: Request) -> Identity:
    """Identity from the `Authorization: Bearer` header; 401 problem on any failure."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing bearer token")
    verifier: TokenVerifier = request.app.state.token_verifier
    verified = await verifier.verify(token.strip())
    return Identity(user_id=verified.user_id, claims=verified.claims)


CurrentIdentity = Annotated[Identity, Depends(authenticate)]
