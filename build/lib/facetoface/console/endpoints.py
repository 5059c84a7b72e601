"""The console's pages and assets, and its development sign-in API.

Pages (`/console`, `/console/sign-in`, `/console/ops`) are static HTML shipped in the package;
their ES modules call the JSON API with the bearer token kept in `sessionStorage`. Every page
is served with a Content-Security-Policy that allows scripts, styles, images and requests only
from this origin, and frames only from the video room's origin (Tavus's, or the simulator's).

`/v1/dev/users` and `/v1/dev/tokens` let a developer sign in as a demo user or as the
development operator with one click. They exist only in development with the built-in HS256
issuer (no `SUPABASE_JWT_SECRET`); anywhere else they are not routes at all (404).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import cache
from importlib.resources import files
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from facetoface.app_state import app_state
from facetoface.auth.dev_issuer import dev_issuer_active
from facetoface.config import Settings
from facetoface.console.schemas import DevToken, DevTokenRequest, DevUsers

#: The pages (served only through their routes, with their headers) and their assets.
PAGES_DIR = files("facetoface.console") / "pages"
STATIC = files("facetoface.console") / "static"
#: Where Tavus's rooms live (`conversation_url` is `https://tavus.daily.co/<id>`).
TAVUS_ROOM_ORIGIN = "https://tavus.daily.co"
_TAVUS_API = "https://tavusapi.com/v2"
PAGES = {
    "/console": "index.html",
    "/console/sign-in": "sign-in.html",
    "/console/ops": "ops.html",
}


def frame_origins(settings: Settings) -> list[str]:
    """Origins the console may embed (the video room): `CONSOLE_FRAME_ORIGINS`, else derived
    from where conversations are created — Tavus's rooms, or the simulator's."""
    if settings.console_frame_origins:
        return list(settings.console_frame_origins)
    if settings.uses_simulator:
        return [f"http://127.0.0.1:{settings.tavus_sim_port}"]
    if settings.tavus_base_url == _TAVUS_API:
        return [TAVUS_ROOM_ORIGIN]
    # Another Tavus-compatible API (a simulator elsewhere): its rooms are on its origin.
    parts = urlsplit(settings.tavus_base_url)
    return [f"{parts.scheme}://{parts.netloc}"]


def content_security_policy(settings: Settings) -> str:
    """The console pages' CSP: this origin only, plus the room's origin for the iframe."""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self'",
            f"frame-src {' '.join(frame_origins(settings))}",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


@cache
def _page(name: str) -> str:
    return (PAGES_DIR / name).read_text("utf-8")


def _page_endpoint(name: str, csp: str) -> Callable[[], Awaitable[HTMLResponse]]:
    async def page() -> HTMLResponse:
        return HTMLResponse(
            _page(name),
            headers={
                "Content-Security-Policy": csp,
                "Referrer-Policy": "no-referrer",
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "no-store",
            },
        )

    page.__name__ = f"console_page_{name.split('.')[0].replace('-', '_')}"
    return page


dev_router = APIRouter(prefix="/v1/dev", tags=["development sign-in"])


@dev_router.get("/users", response_model=DevUsers)
async def list_dev_users(request: Request) -> DevUsers:
    """The demo users (after `facetoface seed-demo`) and the development operator."""
    return DevUsers(users=await app_state(request).console.dev_users())


@dev_router.post("/tokens", response_model=DevToken)
async def mint_dev_token(request: Request, body: DevTokenRequest) -> DevToken:
    """An access token for one of the listed development users (development only)."""
    return await app_state(request).console.dev_token(body.user_id)


def install_console(app: FastAPI, settings: Settings) -> None:
    """Serve the console's pages and assets; the dev sign-in API only where it may exist."""
    csp = content_security_policy(settings)
    router = APIRouter(include_in_schema=False)
    for path, name in PAGES.items():
        router.add_api_route(
            path, _page_endpoint(name, csp), methods=["GET"], response_class=HTMLResponse
        )

    @router.get("/")
    async def root() -> Response:
        return RedirectResponse("/console", status_code=307)

    app.mount("/console/static", StaticFiles(directory=str(STATIC), check_dir=True), name="console")
    app.include_router(router)
    if dev_issuer_active(settings):
        app.include_router(dev_router)
