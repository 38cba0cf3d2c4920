"""WebSocket limits of the server process (uvicorn's message size, Strawberry's init timeout
and subscription cap), on an app with tight settings."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
import websockets

from api.app_server import AppServer
from tests.utils.graphql import GraphQLClient, register
from tests.utils.ws import MESSAGE_EVENTS, connect


@pytest.fixture(scope="module")
def limited(app_factory: Callable[..., AppServer], own_deployment: Callable[[], dict[str, str]]) -> AppServer:
    return app_factory(**own_deployment(), WEBSOCKET_INIT_TIMEOUT_SECONDS="1").start()


@pytest.fixture
async def lgql(limited: AppServer) -> AsyncIterator[GraphQLClient]:
    async with httpx.AsyncClient(timeout=30) as http:
        yield GraphQLClient(http, limited.graphql_url)


async def test_websocket_limits(limited: AppServer, lgql: GraphQLClient) -> None:
    user = await register(lgql)
    # A socket that never sends connection_init is closed with 4408.
    async with websockets.connect(limited.ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4408
    # The 101st subscription on one socket is refused; the first 100 keep working.
    async with connect(limited.ws_url, user.token) as socket:
        for _ in range(100):
            await socket.subscribe(MESSAGE_EVENTS)
        await socket.subscribe(MESSAGE_EVENTS)
        message = json.loads(await asyncio.wait_for(socket.ws.recv(), 10))
        assert message["type"] == "error" and "limit" in json.dumps(message["payload"]).lower()
    # An oversized WebSocket message closes the socket (1009) instead of being parsed.
    async with connect(limited.ws_url, user.token) as socket:
        await socket.ws.send(json.dumps({"id": "x", "type": "subscribe", "payload": {"query": " " * 100_000}}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(socket.ws.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_init_timeout_applies_to_both_protocols(limited: AppServer, lgql: GraphQLClient, protocol: str) -> None:
    # Silent after the handshake: closed with 4408 once WEBSOCKET_INIT_TIMEOUT_SECONDS (1 s) pass.
    async with websockets.connect(limited.ws_url, subprotocols=[protocol]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == protocol
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4408
    # Initialised in time: still open and serving well after the timeout.
    user = await register(lgql)
    async with connect(limited.ws_url, user.token, protocol=protocol) as socket:
        await socket.expect_silence(2.5)
        await socket.subscribe(MESSAGE_EVENTS)
        await socket.expect_silence(0.5)
