"""The console's development sign-in: which demo users exist, and their tokens."""

from __future__ import annotations

from facetoface.auth.dev_issuer import DEV_OPERATOR_ID, mint_token
from facetoface.config import Settings
from facetoface.console.repository import ConsoleRepository
from facetoface.console.schemas import DevToken, DevUser
from facetoface.db import Database, Identity
from facetoface.demo import demo_user_ids
from facetoface.errors import NotFound


class DevUserNotFound(NotFound):
    code = "dev_user_not_found"
    title = "Not a development user"


class ConsoleService:
    """Lists the development users and mints their tokens (development only)."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db

    async def dev_users(self) -> list[DevUser]:
        """The demo users that exist (after `facetoface seed-demo`) and the dev operator."""
        users = []
        for user_id in demo_user_ids():
            # As that user: the same rows row-level security lets them see.
            async with self.db.transaction(Identity(user_id)) as session:
                profile = await ConsoleRepository(session).profile(user_id)
            if profile is not None:
                users.append(
                    DevUser(
                        user_id=profile.id,
                        email=profile.email,
                        name=profile.full_name or profile.email or str(profile.id),
                        operator=False,
                    )
                )
        users.append(
            DevUser(
                user_id=DEV_OPERATOR_ID, email=None, name="Operator (development)", operator=True
            )
        )
        return users

    async def dev_token(self, user_id: object) -> DevToken:
        """An access token for one of `dev_users()`; DevUserNotFound for anyone else."""
        user = next((u for u in await self.dev_users() if u.user_id == user_id), None)
        if user is None:
            raise DevUserNotFound(
                "Pick one of GET /v1/dev/users (run `facetoface seed-demo` first)."
            )
        token = mint_token(
            self.settings, user_id=user.user_id, email=user.email, operator=user.operator
        )
        return DevToken(access_token=token, expires_in=self.settings.dev_token_ttl_seconds)
