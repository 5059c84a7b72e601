"""Row-level security alone keeps users apart, through the app's own connection.

Every test here connects as the application login role (`facetoface_app`), the way production
does, and removes the application's own ownership checks from the picture: the repository is
called with the *victim's* user id, or raw SQL names the victim's rows, while the transaction
carries the *attacker's* identity. What stops the attacker is PostgreSQL alone.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from facetoface.conversations.repository import ConversationRepository
from facetoface.conversations.state import Delta
from facetoface.db import Database, Identity
from facetoface.models import utcnow
from facetoface.sessions.repository import (
    CLAIM_END_SQL,
    DETAIL_SQL,
    GET_SQL,
    LIST_SQL,
    START_SQL,
    StartLimits,
    start_params,
)
from tests.security.rls import DENIED, User, db_settings, rowcount, rows, sqlstate_of


async def _stored(owner: Database, user: User) -> tuple[object, ...]:
    """The victim's session state as the owner sees it."""
    [row] = await rows(
        owner,
        "SELECT ds.session_status, ds.duration_seconds, ds.completed_at, mc.status,"
        " mc.tavus_conversation_id, mc.end_time, mc.version"
        " FROM daily_sessions ds JOIN mentor_conversations mc ON mc.daily_session_id = ds.id"
        " WHERE ds.id = :id",
        {"id": user.session_id},
    )
    return tuple(row)


# --- (a) reads: the app's check removed, RLS alone ------------------------------------------
def _start_params(user_id: uuid.UUID, mentor_id: uuid.UUID | None) -> dict[str, object]:
    """`facetoface.start_session` asked to load (never insert) `user_id`'s context."""
    now = utcnow()
    limits = StartLimits(now - timedelta(hours=1), 100, 20, 20, 800, None, None)
    return start_params(user_id, mentor_id=mentor_id, now=now, limits=limits, new=None, key=None)


async def test_repository_reads_with_another_users_id_see_nothing(
    app_db: Database, alice: User, bob: User
) -> None:
    """Bob's round trips ask for Alice's rows by Alice's id: every read comes back empty."""
    victim = {"session_id": alice.session_id, "user_id": alice.id}
    assert await app_db.run(GET_SQL, victim, bob.identity, role="user") == []
    # The detail runs as the service acting for the caller (it reads a live private room's
    # meeting token, which `authenticated` may not): confined to the caller all the same.
    assert await app_db.run(DETAIL_SQL, victim, bob.identity, role="service") == []
    page = {"user_id": alice.id, "limit": 50, "before_at": None, "before_id": None}
    assert await app_db.run(LIST_SQL, page, bob.identity, role="user") == []
    # The start's load, as the service acting for Bob, handed Alice's ids.
    [data] = await app_db.run(
        START_SQL, _start_params(alice.id, alice.persona_id), bob.identity, role="service"
    )
    assert data["refusal"] == "profile_not_found"
    assert data["profile"] is None
    assert data["onboarding"] is None
    assert data["ritual"] is None
    assert data["categories"] == []
    assert data["goals"] == []
    assert data["persona"] is None
    assert (data["previous_sessions"], data["recap"], data["changed_goals"]) == ([], [], [])
    # Bob's own rows are there: the filter is the caller, not "nothing at all".
    own = {"session_id": bob.session_id, "user_id": bob.id}
    [detail] = await app_db.run(DETAIL_SQL, own, bob.identity, role="service")
    assert len(detail["events"]) == 1
    [mine] = await app_db.run(START_SQL, _start_params(bob.id, None), bob.identity, role="service")
    assert mine["profile"] is not None
    assert mine["persona"] is not None


async def test_raw_sql_reads_of_another_users_rows_return_zero_rows(
    app_db: Database, alice: User, bob: User
) -> None:
    victim = {"uid": alice.id, "sid": alice.session_id, "cid": alice.conversation_id}
    queries = [
        "SELECT * FROM daily_sessions WHERE id = :sid",
        "SELECT id FROM mentor_conversations WHERE daily_session_id = :sid",
        "SELECT * FROM profiles WHERE id = :uid",
        "SELECT * FROM onboarding_profiles WHERE user_id = :uid",
        "SELECT * FROM ritual_preferences WHERE user_id = :uid",
        "SELECT * FROM user_emotional_categories WHERE user_id = :uid",
        "SELECT * FROM user_goals WHERE user_id = :uid",
        "SELECT * FROM user_personas WHERE user_id = :uid",
        "SELECT * FROM idempotency_keys WHERE user_id = :uid",
        "SELECT id, event_type FROM tavus_callback_events WHERE mentor_conversation_id = :cid",
    ]
    for sql in queries:
        params = {k: v for k, v in victim.items() if f":{k}" in sql}
        assert await rows(app_db, sql, params, identity=bob.identity) == [], sql
    # The origin let every signed-in user read every profile (emails included).
    everyone = await rows(app_db, "SELECT id FROM profiles", identity=bob.identity)
    assert [r.id for r in everyone] == [bob.id]


# --- (a) writes: the app's check removed, RLS alone -----------------------------------------
async def test_service_writes_for_one_user_cannot_touch_another_users_session(
    app_db: Database, owner: Database, alice: User, bob: User
) -> None:
    """The session writes of start/end run as facetoface_service *with the caller's claims*:
    handed Alice's ids inside Bob's transaction, they change nothing of Alice's."""
    before = await _stored(owner, alice)
    now = utcnow()
    claim = {
        "user_id": alice.id,
        "now": now,
        "sel_daily": alice.session_id,
        "sel_row": None,
        "sel_tavus": None,
    }
    [claimed] = await app_db.run(CLAIM_END_SQL, claim, bob.identity, role="service")
    assert claimed == {"claimed": False, "session": None}
    # The merge itself, with the app's owner check removed (owner=None): Bob's transaction
    # does not even see Alice's conversation, so nothing changes.
    conversations = ConversationRepository(app_db)
    for delta in (
        Delta(closed_at=now),
        Delta(fail=True, failure_code="x"),
        Delta(conversation_id="c-forged", adopt=True, start_time=now),
    ):
        applied = await conversations.apply(
            alice.conversation_id, delta, identity=bob.identity, now=now
        )
        assert not applied.found
        assert applied.session is None
    assert await _stored(owner, alice) == before

    # Raw SQL, same transaction kind: 0 rows changed, and rows for Alice cannot be created.
    for sql in (
        "UPDATE daily_sessions SET session_status = 'completed' WHERE id = :sid",
        "UPDATE mentor_conversations SET status = 'ended' WHERE daily_session_id = :sid",
        "UPDATE idempotency_keys SET state = 'done' WHERE user_id = :uid",
        "DELETE FROM idempotency_keys WHERE user_id = :uid",
    ):
        params = {"sid": alice.session_id} if ":sid" in sql else {"uid": alice.id}
        assert await rowcount(app_db, sql, params, identity=bob.identity, role="service") == 0
    state = await sqlstate_of(
        app_db,
        "INSERT INTO daily_sessions (id, user_id, session_type) VALUES (:id, :uid, 'face_to_face')",
        {"id": uuid.uuid4(), "uid": alice.id},
        identity=bob.identity,
        role="service",
    )
    assert state == DENIED
    assert await _stored(owner, alice) == before


async def test_deleting_is_only_ever_for_the_user_acted_for(
    app_db: Database, owner: Database, alice: User, bob: User
) -> None:
    """Session deletion and user erasure (data rights) run as the service acting for one
    user: for anybody else, and when acting for nobody (callbacks, reconciler), they delete
    nothing."""
    victim_session = "DELETE FROM daily_sessions WHERE id = :sid"
    victim_profile = "DELETE FROM profiles WHERE id = :uid"
    sid, uid = {"sid": alice.session_id}, {"uid": alice.id}
    for identity in (bob.identity, None):
        assert await rowcount(app_db, victim_session, sid, identity=identity, role="service") == 0
        assert await rowcount(app_db, victim_profile, uid, identity=identity, role="service") == 0
    assert await _stored(owner, alice)
    # Acting for Alice, it works (and cascades to all her rows).
    ident = alice.identity
    assert await rowcount(app_db, victim_session, sid, identity=ident, role="service") == 1
    assert await rowcount(app_db, victim_profile, uid, identity=ident, role="service") == 1
    [left] = await rows(
        owner, "SELECT count(*) AS n FROM user_goals WHERE user_id = :uid", {"uid": alice.id}
    )
    assert left.n == 0
    # The service may redact an inbox payload when acting for nobody, never rewrite events.
    redact = "UPDATE tavus_callback_events SET payload = '{}' WHERE mentor_conversation_id = :c"
    cid = {"c": bob.conversation_id}
    assert await rowcount(app_db, redact, cid, role="service") == 1
    assert await rowcount(app_db, redact, cid, identity=bob.identity, role="service") == 0
    rewrite = (
        "UPDATE tavus_callback_events SET outcome = 'ignored' WHERE mentor_conversation_id = :c"
    )
    assert await sqlstate_of(app_db, rewrite, cid, role="service") == DENIED


async def test_users_cannot_change_or_create_another_users_rows(
    app_db: Database, owner: Database, alice: User, bob: User
) -> None:
    """As `authenticated` (what Supabase's REST API runs as), on the tables users may write."""
    for sql in (
        "UPDATE profiles SET full_name = 'pwned' WHERE id = :uid",
        "UPDATE user_goals SET goal_text = 'pwned' WHERE user_id = :uid",
        "UPDATE user_personas SET name = 'pwned' WHERE user_id = :uid",
        "UPDATE ritual_preferences SET focus_area = 'pwned' WHERE user_id = :uid",
        "DELETE FROM user_emotional_categories WHERE user_id = :uid",
        "DELETE FROM onboarding_profiles WHERE user_id = :uid",
        "DELETE FROM profiles WHERE id = :uid",
    ):
        assert await rowcount(app_db, sql, {"uid": alice.id}, identity=bob.identity) == 0, sql
    planted = await sqlstate_of(
        app_db,
        "INSERT INTO user_goals (id, user_id, goal_text) VALUES (:id, :uid, 'planted')",
        {"id": uuid.uuid4(), "uid": alice.id},
        identity=bob.identity,
    )
    assert planted == DENIED
    # Moving one's own row to someone else is refused by WITH CHECK.
    moved = await sqlstate_of(
        app_db,
        "UPDATE user_goals SET user_id = :victim WHERE user_id = :me",
        {"victim": alice.id, "me": bob.id},
        identity=bob.identity,
    )
    assert moved == DENIED
    [name] = await rows(owner, "SELECT full_name FROM profiles WHERE id = :id", {"id": alice.id})
    assert name.full_name == "alice"
    [goals] = await rows(
        owner, "SELECT count(*) AS n FROM user_goals WHERE user_id = :id", {"id": alice.id}
    )
    assert goals.n == 3


# --- (b) no forging one's own session -------------------------------------------------------
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE daily_sessions SET session_status = 'completed' WHERE id = :sid",
        "UPDATE daily_sessions SET duration_seconds = 3600 WHERE id = :sid",
        "UPDATE daily_sessions SET conversation_transcript = 'forged' WHERE id = :sid",
        "UPDATE mentor_conversations SET tavus_conversation_id = 'c-other' WHERE id = :cid",
        "UPDATE mentor_conversations SET status = 'ended', duration_seconds = 1 WHERE id = :cid",
        "DELETE FROM daily_sessions WHERE id = :sid",
        "INSERT INTO daily_sessions (id, user_id, session_type, session_status) "
        "VALUES (:new, :uid, 'face_to_face', 'completed')",
        "INSERT INTO mentor_conversations (id, user_id, daily_session_id, conversation_name, "
        "status, callback_token_hash) VALUES (:new, :uid, :sid, 'facetoface:x', 'starting', "
        "'\\x00')",
        "INSERT INTO tavus_callback_events (id, mentor_conversation_id, conversation_id, "
        "event_type, dedupe_key, payload, outcome, received_at) VALUES (:new, :cid, 'c', "
        "'system.shutdown', 'k', '{}', 'applied', now())",
        "UPDATE idempotency_keys SET state = 'done' WHERE user_id = :uid",
        # Their plan and their mentor's Tavus replica are not theirs to choose.
        "UPDATE profiles SET subscription_tier = 'paid' WHERE id = :uid",
        "UPDATE user_personas SET replica_id = 'r-premium', tavus_persona_id = 'p' "
        "WHERE user_id = :uid",
        "INSERT INTO mentor_avatars (id, name, tavus_replica_id) VALUES (:new, 'mine', 'r')",
        # Secrets and raw inbox payloads stay out of reach even for their own rows.
        "SELECT callback_token_hash FROM mentor_conversations WHERE id = :cid",
        # A private room's meeting token: only ever handed out by the service (0009).
        "SELECT meeting_token FROM mentor_conversations WHERE id = :cid",
        "UPDATE mentor_conversations SET meeting_token = 'mine' WHERE id = :cid",
        # Another user's memory choice (their own is theirs to write; see test_preferences).
        "INSERT INTO user_preferences (user_id, mentor_memory) VALUES (:other, false)",
        "SELECT payload FROM tavus_callback_events WHERE mentor_conversation_id = :cid",
        "SELECT * FROM alembic_version",
        # The reconciler's history is the operators' (through the ops API), not a user's.
        "SELECT * FROM reconcile_runs",
        "INSERT INTO reconcile_runs (id, started_at, finished_at, replica, actions, errors) "
        "VALUES (:new, now(), now(), 'me', '{}', 0)",
        # The app's webhook outbox: a user who could write it could have the service sign
        # events to the app; reading it is the operators' (0014).
        "SELECT * FROM webhook_events",
        "INSERT INTO webhook_events (id, event_type, event_key, user_id, data, occurred_at, "
        "next_attempt_at, created_at) VALUES (:new, 'session.ended', 'forged', :uid, '{}', "
        "now(), now(), now())",
    ],
)
async def test_users_cannot_forge_their_own_session_state(
    app_db: Database, owner: Database, alice: User, sql: str
) -> None:
    before = await _stored(owner, alice)
    params = {"sid": alice.session_id, "cid": alice.conversation_id, "uid": alice.id}
    params["new"] = params["other"] = uuid.uuid4()
    used = {k: v for k, v in params.items() if f":{k}" in sql}
    assert await sqlstate_of(app_db, sql, used, identity=alice.identity) == DENIED
    assert await _stored(owner, alice) == before


async def test_users_may_edit_their_own_profile_data(app_db: Database, alice: User) -> None:
    """The grants that remain: the harmless columns of their own profile-type rows."""
    me = {"uid": alice.id}
    ident = alice.identity
    changed = await rowcount(
        app_db, "UPDATE profiles SET full_name = 'Alice B.' WHERE id = :uid", me, identity=ident
    )
    assert changed == 1
    done = "UPDATE user_goals SET progress_percentage = 100 WHERE user_id = :uid"
    assert await rowcount(app_db, done, me, identity=ident) == 3
    await rows(
        app_db,
        "INSERT INTO user_goals (id, user_id, goal_text) VALUES (:id, :uid, 'new goal')",
        {"id": uuid.uuid4(), "uid": alice.id},
        identity=ident,
    )
    rename = "UPDATE user_personas SET name = 'Guide' WHERE user_id = :uid"
    assert await rowcount(app_db, rename, me, identity=ident) == 1
    [avatar] = await rows(app_db, "SELECT count(*) AS n FROM mentor_avatars", identity=ident)
    assert avatar.n >= 1


# --- (d) auth.uid() is the sub the app set --------------------------------------------------
async def test_auth_uid_and_jwt_are_the_callers(app_db: Database, alice: User) -> None:
    async with app_db.transaction(alice.identity) as session:
        row = (
            await session.execute(
                text(
                    "SELECT auth.uid() AS uid, auth.jwt() ->> 'sub' AS sub,"
                    " auth.jwt() ->> 'email' AS email, current_user AS role,"
                    " session_user AS login"
                )
            )
        ).one()
    assert row.uid == alice.id
    assert row.sub == str(alice.id)
    assert row.email == "alice@example.com"
    assert row.role == "authenticated"
    assert row.login == "facetoface_app"


async def test_the_claims_sub_is_always_the_identitys_user(app_db: Database, alice: User) -> None:
    """A claims dict naming someone else cannot widen what the transaction sees."""
    other = uuid.uuid4()
    identity = Identity(alice.id, {"sub": str(other), "role": "service_role"})
    [row] = await rows(
        app_db,
        "SELECT auth.uid() AS uid, auth.jwt() ->> 'sub' AS sub, current_user AS role",
        identity=identity,
    )
    assert (row.uid, row.sub, row.role) == (alice.id, str(alice.id), "authenticated")


# --- (e) nothing leaks between transactions on a pooled connection --------------------------
async def test_claims_and_role_do_not_outlive_their_transaction(
    pg_database_url: str, alice: User, bob: User
) -> None:
    from tests.conftest import app_role_url

    db = Database(db_settings(app_role_url(pg_database_url), db_pool_size=1, db_max_overflow=0))
    probe = (
        "SELECT pg_backend_pid() AS pid, current_user AS role,"
        " current_setting('request.jwt.claim.sub', true) AS sub,"
        " current_setting('request.jwt.claims', true) AS claims"
    )
    try:
        async with db.transaction(alice.identity) as session:
            first = (await session.execute(text(f"{probe}, auth.uid() AS uid"))).one()
        assert (first.role, first.uid) == ("authenticated", alice.id)

        # The same server connection, a transaction without identity: no caller, no role.
        [plain] = await rows(db, probe)
        assert plain.pid == first.pid
        assert plain.role == "facetoface_app"
        assert plain.sub in ("", None)
        assert plain.claims in ("", None)

        [service] = await rows(db, f"{probe}, auth.uid() AS uid", role="service")
        assert service.pid == first.pid
        assert (service.role, service.uid, service.sub, service.claims) == (
            "facetoface_service",
            None,
            "",
            "",
        )

        # A transaction that fails midway leaves nothing behind either.
        with pytest.raises(ZeroDivisionError):
            async with db.transaction(alice.identity):
                raise ZeroDivisionError
        [after] = await rows(db, f"{probe}, auth.uid() AS uid", identity=bob.identity)
        assert (after.pid, after.uid, after.sub) == (first.pid, bob.id, str(bob.id))

        # Concurrent requests on one connection queue; each sees only itself.
        async def whoami(user: User) -> uuid.UUID:
            [row] = await rows(db, "SELECT auth.uid() AS uid", identity=user.identity)
            return row.uid

        seen = await asyncio.gather(*(whoami(u) for u in [alice, bob] * 5))
        assert seen == [alice.id, bob.id] * 5
    finally:
        await db.dispose()


async def test_the_login_role_alone_reads_nothing(app_db: Database, alice: User) -> None:
    """A transaction that names no role runs as the login role, which holds no table
    privileges (NOINHERIT): forgetting the identity fails closed, it does not see everything."""
    for table in ("profiles", "daily_sessions", "mentor_conversations", "user_goals"):
        assert await sqlstate_of(app_db, f"SELECT 1 FROM {table}") == DENIED, table
    # It can still answer the health check and read the schema version.
    assert await rows(app_db, "SELECT 1 AS one") == [(1,)]
    [version] = await rows(app_db, "SELECT version_num FROM alembic_version")
    assert version.version_num


# --- (f) anonymous: nothing at all ----------------------------------------------------------
@pytest.mark.parametrize(
    "table",
    [
        "profiles",
        "onboarding_profiles",
        "ritual_preferences",
        "user_emotional_categories",
        "user_goals",
        "user_personas",
        "mentor_avatars",
        "daily_sessions",
        "mentor_conversations",
        "tavus_callback_events",
        "idempotency_keys",
        "reconcile_runs",
        "webhook_events",
        "alembic_version",
    ],
)
async def test_anon_sees_nothing(owner: Database, alice: User, table: str) -> None:
    """Supabase's `anon` (any holder of the public anon key), even with a `sub` claim set."""

    async def read_as_anon() -> None:
        async with owner.transaction() as session:
            await session.execute(
                text(
                    "SELECT set_config('role', 'anon', true),"
                    " set_config('request.jwt.claim.sub', :sub, true)"
                ),
                {"sub": str(alice.id)},
            )
            await session.execute(text(f"SELECT * FROM {table}"))

    with pytest.raises(DBAPIError) as denied:
        await read_as_anon()
    assert getattr(denied.value.orig, "sqlstate", None) == DENIED


@pytest.mark.parametrize("role", ["anon", "service_role", "postgres"])
async def test_the_app_cannot_become_another_role(app_db: Database, role: str) -> None:
    """Only `authenticated` and `facetoface_service` are reachable from the login role: not
    the BYPASSRLS `service_role`, not the owner."""
    state = await sqlstate_of(app_db, "SELECT set_config('role', :role, true)", {"role": role})
    assert state == DENIED


async def test_idempotency_keys_are_only_the_callers(
    app_db: Database, owner: Database, alice: User, bob: User
) -> None:
    """Idempotency keys are the caller's too: Bob's claim with Alice's id is refused."""
    now = utcnow()
    state = await sqlstate_of(
        app_db,
        "INSERT INTO idempotency_keys (user_id, key, request_hash, state, daily_session_id,"
        " created_at, locked_until, expires_at) VALUES (:u, 'k1', :h, 'in_flight', :d, :now,"
        " :now, :later)",
        {
            "u": alice.id,
            "h": b"h" * 32,
            "d": alice.session_id,
            "now": now,
            "later": now + timedelta(hours=1),
        },
        identity=bob.identity,
        role="service",
    )
    assert state == DENIED
    [n] = await rows(
        owner, "SELECT count(*) AS n FROM idempotency_keys WHERE user_id = :u", {"u": alice.id}
    )
    assert n.n == 0
