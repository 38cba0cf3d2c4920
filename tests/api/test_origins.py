"""Browser origins: CORS_ORIGINS governs HTTP (CORS) and WebSocket handshakes alike; pages on
the server's own host and clients sending no Origin (not browsers) always get in."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
import websockets

from api.app_server import AppServer
from tests.utils.graphql import ME, GraphQLClient, register
from tests.utils.in_process import InProcessApps
from tests.utils.ws import connect

ALLOWED = "https://chat.example.com"
FOREIGN = "https://evil.example.net"


@pytest.fixture(scope="module")
def cross_origin(app_factory: Callable[..., AppServer]) -> AppServer:
    return app_factory(CORS_ORIGINS=f"{ALLOWED}, https://other.example.org").start()


async def test_websocket_origins_follow_cors_origins(cross_origin: AppServer, http: httpx.AsyncClient) -> None:
    gql = GraphQLClient(http, cross_origin.graphql_url)
    user = await register(gql)
    query = await http.post(cross_origin.graphql_url, json={"query": ME}, headers={
        "Origin": ALLOWED, "Authorization": f"Bearer {user.token}"})
    assert query.headers["access-control-allow-origin"] == ALLOWED  # HTTP was already allowed
    for origin in (ALLOWED, None, cross_origin.url):  # listed, not a browser, the page's own host
        async with connect(cross_origin.ws_url, user.token, origin=origin) as socket:
            await socket.expect_silence(0.1)
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with connect(cross_origin.ws_url, user.token, origin=FOREIGN):
            pass
    assert refused.value.response.status_code == 403


async def test_preflight_allows_configured_headers(in_process_apps: InProcessApps) -> None:
    app = await in_process_apps.start(cors_origins=ALLOWED,
                                      cors_allow_headers="authorization,content-type,apollo-require-preflight")
    async with app.client() as client:
        preflight = await client.client.options(client.url, headers={
            "Origin": ALLOWED, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,apollo-require-preflight"})
        assert preflight.status_code == 200, preflight.text
        allowed = preflight.headers["access-control-allow-headers"].lower()
        assert "apollo-require-preflight" in allowed and "authorization" in allowed
        foreign = await client.client.options(client.url, headers={
            "Origin": FOREIGN, "Access-Control-Request-Method": "POST"})
        assert foreign.status_code == 400
