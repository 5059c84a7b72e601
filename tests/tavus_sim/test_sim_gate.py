"""The ``/v2`` front door: 401 before 404 on every route, Tavus-shaped 404 and 405 bodies."""

from __future__ import annotations

import httpx
import pytest

from tavus_sim import SimServer
from tavus_sim.app import API_ROUTERS
from tavus_sim.gate import api_routes

INVALID_TOKEN = {"message": "Invalid access token"}


def _api_routes() -> list[tuple[str, str]]:
    """Every (method, path) the simulated Tavus API serves, path parameters filled in."""
    routes: list[tuple[str, str]] = []
    for route in api_routes(API_ROUTERS):
        assert route.path.startswith("/v2/")
        for method in sorted((route.methods or set()) - {"HEAD"}):
            filled = route.path.format(
                conversation_id="cdoesnotexist",
                persona_id="pdoesnotexist",
                replica_id="rdoesnotexist",
                memory_store_id="msdoesnotexist",
                memory_id="pmdoesnotexist",
                tool_id="tdoesnotexist",
                pal_id="pdoesnotexist",
            )
            routes.append((method, filled))
    return routes


API_ROUTES = _api_routes()
UNKNOWN_ROUTES = [("GET", "/v2/nothing-here"), ("DELETE", "/v2"), ("PUT", "/v2/personas/p1")]


def test_every_collection_and_alias_is_served() -> None:
    paths = {path for _, path in API_ROUTES}
    for collection in (
        "conversations",
        "personas",
        "pals",
        "replicas",
        "faces",
        "memory-stores",
        "tools",
    ):
        assert f"/v2/{collection}" in paths


@pytest.mark.parametrize("headers", [{}, {"x-api-key": "wrong"}, {"x-api-key": ""}])
@pytest.mark.parametrize(("method", "path"), API_ROUTES + UNKNOWN_ROUTES)
def test_a_bad_key_is_401_on_every_route_existing_or_not(
    http: httpx.Client, sim: SimServer, headers: dict[str, str], method: str, path: str
) -> None:
    response = http.request(method, sim.base_url + path, headers=headers, json={})

    assert response.status_code == 401
    assert response.json() == INVALID_TOKEN
    assert sim.conversations()["create_requests"] == 0


@pytest.mark.parametrize(("method", "path"), API_ROUTES)
def test_with_the_key_no_route_answers_401(
    http: httpx.Client, sim: SimServer, method: str, path: str
) -> None:
    response = http.request(
        method, sim.base_url + path, headers={"x-api-key": sim.api_key}, json={}
    )

    assert response.status_code != 401
    assert response.status_code < 500


def test_unknown_path_is_a_tavus_shaped_404(http: httpx.Client, sim: SimServer) -> None:
    response = http.get(f"{sim.api_url}/nothing-here", headers={"x-api-key": sim.api_key})

    assert response.status_code == 404
    assert response.json() == {"message": "Not Found"}


def test_wrong_method_is_a_tavus_shaped_405_with_allow(http: httpx.Client, sim: SimServer) -> None:
    response = http.put(f"{sim.api_url}/conversations", headers={"x-api-key": sim.api_key})

    assert response.status_code == 405
    assert response.json() == {"message": "Method Not Allowed"}
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "POST"}


def test_outside_the_api_no_key_is_needed_and_404s_keep_their_shape(
    http: httpx.Client, sim: SimServer
) -> None:
    assert http.get(f"{sim.base_url}/_sim/config").status_code == 200
    response = http.get(f"{sim.base_url}/elsewhere")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


def test_latency_applies_before_the_key_check(http: httpx.Client, sim: SimServer) -> None:
    sim.set_config(latency_ms=120)
    response = http.get(f"{sim.api_url}/personas", headers={"x-api-key": "wrong"})

    assert response.status_code == 401
    assert response.elapsed.total_seconds() >= 0.12
