"""FastAPI dependencies: the verified caller, as a database `Identity`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from facetoface.auth.tokens import TokenVerifier
from facetoface.db import Identity
from facetoface.errors import Unauthorized

#: Declares the scheme in the OpenAPI document (`security` on every operation that needs a
#: caller); failures are still ours: one 401 problem document, never FastAPI's own error.
bearer_scheme = HTTPBearer(
    bearerFormat="JWT", description="A Supabase Auth access token.", auto_error=False
)


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
) -> Identity:
    """Identity from the `Authorization: Bearer` header; 401 problem on any failure."""
    if credentials is None:  # no header, another scheme, or an empty token
        raise Unauthorized("missing bearer token")
    verifier: TokenVerifier = request.app.state.token_verifier
    verified = await verifier.verify(credentials.credentials)
    return Identity(user_id=verified.user_id, claims=verified.claims)


CurrentIdentity = Annotated[Identity, Depends(authenticate)]
