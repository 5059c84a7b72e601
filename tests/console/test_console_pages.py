"""The console's pages, assets and headers; the development sign-in API and where it must not
exist; `/docs` served from packaged assets (works offline)."""

from __future__ import annotations

import re
from importlib.resources import files
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
import pytest

from facetoface.auth.dev_issuer import DEV_OPERATOR_ID
from facetoface.demo import demo_id, seed_demo_data
from tests.conftest import RunningService

STATIC = files("facetoface.console") / "static"
PAGES = files("facetoface.console") / "pages"


@pytest.fixture
def service_overrides() -> dict[str, Any]:
    return {"environment": "development"}


async def seed(service: RunningService) -> None:
    async with service.db.transaction() as session:
        await seed_demo_data(session)


async def test_pages_are_served_with_a_strict_content_security_policy(
    service: RunningService,
) -> None:
    sim = urlsplit(service.sim.base_url)
    root = await service.client.get("/")
    assert root.status_code == 307
    assert root.headers["location"] == "/console"
    for path in ("/console", "/console/sign-in", "/console/ops"):
        page = await service.client.get(path)
        assert page.status_code == 200, path
        assert page.headers["content-type"].startswith("text/html")
        csp = dict(
            part.strip().split(" ", 1)
            for part in page.headers["content-security-policy"].split(";")
        )
        assert csp["default-src"] == "'self'"
        assert csp["script-src"] == "'self'"
        assert csp["connect-src"] == "'self'"
        assert csp["frame-src"] == f"{sim.scheme}://{sim.netloc}"  # the room, nothing else
        assert csp["frame-ancestors"] == "'none'"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "no-referrer"
        # Everything the page loads is on this origin: no CDN, no inline script.
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", page.text), path
        assert "<script>" not in page.text
    script = await service.client.get("/console/static/user.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]


def test_console_code_puts_data_in_as_text_only() -> None:
    """No `innerHTML`/`outerHTML`/`insertAdjacentHTML`/`document.write` anywhere: data goes
    in through textContent and text nodes (the browser tests prove it with `<script>`)."""
    sources = [p for p in STATIC.iterdir() if p.name.endswith(".js")]
    assert {p.name for p in sources} >= {"api.js", "ui.js", "user.js", "ops.js", "sign-in.js"}
    for source in sources:
        text = source.read_text("utf-8")
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in text, (source.name, sink)
    for page in PAGES.iterdir():
        assert "http://" not in page.read_text("utf-8"), page.name
        assert "https://" not in page.read_text("utf-8"), page.name


async def test_dev_sign_in_lists_demo_users_and_mints_working_tokens(
    service: RunningService,
) -> None:
    await seed(service)

    listing = await service.client.get("/v1/dev/users")

    assert listing.status_code == 200, listing.text
    users = listing.json()["users"]
    assert [(u["name"], u["operator"]) for u in users] == [
        ("Maria Silva", False),
        ("Alex Kim", False),
        ("Sam Dupont", False),
        ("Operator (development)", True),
    ]
    maria = await service.client.post("/v1/dev/tokens", json={"user_id": str(demo_id("maria"))})
    boss = await service.client.post("/v1/dev/tokens", json={"user_id": str(DEV_OPERATOR_ID)})
    assert maria.status_code == boss.status_code == 200
    maria_token, boss_token = maria.json()["access_token"], boss.json()["access_token"]
    assert maria.json()["expires_in"] == service.settings.dev_token_ttl_seconds

    as_maria = {"Authorization": f"Bearer {maria_token}"}
    as_boss = {"Authorization": f"Bearer {boss_token}"}
    context = await service.client.get("/v1/me/context", headers=as_maria)
    assert context.status_code == 200
    assert context.json()["mentor"]["name"] == "Sage"
    assert (await service.client.get("/v1/ops/tavus", headers=as_maria)).status_code == 403
    assert (await service.client.get("/v1/ops/tavus", headers=as_boss)).status_code == 200
    claims = jwt.decode(boss_token, options={"verify_signature": False})
    assert claims["app_metadata"]["facetoface_role"] == "operator"
    assert (
        "facetoface_role"
        not in jwt.decode(maria_token, options={"verify_signature": False})["app_metadata"]
    )


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"user_id": "6a1c2a52-8d7e-4c55-9a51-3d1f0f7f9b10"}, 404, "dev_user_not_found"),
        ({"user_id": "not-a-uuid"}, 422, "validation_error"),
        ({"user_id": str(demo_id("maria")), "operator": True}, 422, "validation_error"),
        ({}, 422, "validation_error"),
    ],
)
async def test_dev_tokens_only_for_listed_users(
    service: RunningService, body: dict[str, Any], status: int, code: str
) -> None:
    await seed(service)

    response = await service.client.post("/v1/dev/tokens", json=body)

    assert response.status_code == status, response.text
    assert response.json()["code"] == code


@pytest.mark.parametrize(
    "overrides",
    [
        {"environment": "test"},
        {"environment": "development", "supabase_jwt_secret": "x" * 40},
    ],
    ids=["not-development", "real-hs256-secret"],
)
async def test_dev_sign_in_does_not_exist_elsewhere(overrides: dict[str, Any]) -> None:
    from facetoface.app import create_app
    from facetoface.config import Settings

    # Never started: what is asked for is routing alone (routes that must not exist, a static
    # page), which needs no database and no services.
    app = create_app(Settings(_env_file=None, **overrides))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        users = await client.get("/v1/dev/users")
        tokens = await client.post("/v1/dev/tokens", json={"user_id": str(DEV_OPERATOR_ID)})
        console = await client.get("/console/sign-in")
    assert users.status_code == tokens.status_code == 404
    assert console.status_code == 200  # the console itself: paste a token


async def test_docs_work_offline_from_packaged_assets(service: RunningService) -> None:
    docs = await service.client.get("/docs")

    assert docs.status_code == 200
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", docs.text)
    assert assets, docs.text
    assert "cdn" not in docs.text.lower()
    for asset in assets:
        assert asset.startswith("/docs/assets/"), asset
        fetched = await service.client.get(asset)
        assert fetched.status_code == 200, asset
        assert len(fetched.content) > 1000
    assert (await service.client.get("/openapi.json")).status_code == 200


async def test_no_docs_outside_development() -> None:
    from facetoface.app import create_app
    from facetoface.config import Settings

    # Never started: routes that must not exist need no database and no services.
    app = create_app(Settings(_env_file=None, environment="test"))  # type: ignore[call-arg]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/docs")).status_code == 404
        assert (await client.get("/docs/assets/swagger-ui-bundle.js")).status_code == 404
