"""FastAPI dependencies: the verified caller, as a database `Identity`; operators.

An operator is a caller whose token carries `app_metadata.facetoface_role = "operator"`.
Supabase's `app_metadata` is server-controlled (a user cannot change it; set it with the
service-role key or SQL on `auth.users.raw_app_meta_data`), unlike `user_metadata`, which
must never be used to authorise anything.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from facetoface.app_state import app_state
from facetoface.db import Identity
from facetoface.errors import Forbidden, Unauthorized

#: The claim (inside `app_metadata`) and its value that make a caller an operator.
OPERATOR_CLAIM = "facetoface_role"
OPERATOR_ROLE = "operator"


class OperatorRequired(Forbidden):
    code = "operator_required"
    title = "Operator role required"


def is_operator(claims: dict[str, Any]) -> bool:
    """Whether verified `claims` name an operator (`app_metadata.facetoface_role`)."""
    app_metadata = claims.get("app_metadata")
    return isinstance(app_metadata, dict) and app_metadata.get(OPERATOR_CLAIM) == OPERATOR_ROLE


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
    verified = await app_state(request).token_verifier.verify(credentials.credentials)
    return Identity(user_id=verified.user_id, claims=verified.claims)


CurrentIdentity = Annotated[Identity, Depends(authenticate)]


async def require_operator(identity: CurrentIdentity) -> Identity:
    """The caller, if an operator; 403 `operator_required` for everyone else."""
    if not is_operator(identity.claims):
        raise OperatorRequired(
            'This API is for operators: a token whose app_metadata.facetoface_role is "operator".'
        )
    return identity


CurrentOperator = Annotated[Identity, Depends(require_operator)]
