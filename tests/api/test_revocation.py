"""Revoked tokens over WebSocket and across instances: two `chattergram serve` processes on one
Redis and MongoDB. A revocation made through one instance closes the token's open sockets with
4403 on both, refuses new sockets with it, and its HTTP requests get UNAUTHENTICATED on both;
sockets of tokens that were not revoked stay open. (The rules themselves are in
tests/resolvers/test_revocation.py.)"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
import websockets

from api.app_server import AppServer
from api.dev_servers import EmbeddedServers
from tests.utils.graphql import LOGIN, ME, PASSWORD, Account, GraphQLClient, register
from tests.utils.ws import MESSAGE_EVENTS, Socket, connect, wait_for_subscribers

REVOCATIONS_CHANNEL = "cg:events:revocations"
CHANGE_PASSWORD = """
mutation Change($current: String!, $new: String!) {
  changePassword(currentPassword: $current, newPassword: $new) { token }
}"""


@pytest.fixture
async def clients(app: AppServer, second_app: AppServer,
                  dev_servers: EmbeddedServers) -> AsyncIterator[tuple[GraphQLClient, GraphQLClient]]:
    await wait_for_subscribers(dev_servers.redis_url, REVOCATIONS_CHANNEL, count=2)
    async with httpx.AsyncClient(timeout=30) as http:
        yield GraphQLClient(http, app.graphql_url), GraphQLClient(http, second_app.graphql_url)


async def _login(gql: GraphQLClient, account: Account, password: str = PASSWORD) -> str:
    token: str = (await gql.ok(LOGIN, {"input": {"login": account.username, "password": password}}))["login"]["token"]
    return token


async def _closed_with(socket: Socket, code: int = 4403) -> None:
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(socket.ws.recv(), 10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == code


async def _still_open(socket: Socket) -> None:
    await socket.expect_silence(0.5)
    await socket.ws.ping()  # answered: the connection is alive
    op = await socket.subscribe(MESSAGE_EVENTS)
    await socket.complete(op)


async def _refused(url: str, token: str) -> None:
    """A new socket with the revoked token is refused with 4403, on both subprotocols."""
    for protocol in ("graphql-transport-ws", "graphql-ws"):
        async with websockets.connect(url, subprotocols=[protocol]) as ws:  # type: ignore[list-item]  # str for its Subprotocol NewType
            await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    message = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    assert message["type"] != "connection_ack", protocol
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403, protocol


async def test_logout_closes_that_tokens_sockets_on_every_instance(
    app: AppServer, second_app: AppServer, clients: tuple[GraphQLClient, GraphQLClient]
) -> None:
    gql_a, gql_b = clients
    alice = await register(gql_a)
    other = await _login(gql_b, alice)
    async with connect(app.ws_url, alice.token) as on_a, \
            connect(second_app.ws_url, alice.token, protocol="graphql-ws") as on_b, \
            connect(second_app.ws_url, other) as other_on_b:
        for socket in (on_a, on_b, other_on_b):
            await socket.subscribe(MESSAGE_EVENTS)

        assert await gql_a.ok("mutation { logout }", token=alice.token) == {"logout": True}

        await asyncio.gather(_closed_with(on_a), _closed_with(on_b))
        await _still_open(other_on_b)
    for gql in (gql_a, gql_b):
        assert (await gql.error(ME, token=alice.token))["extensions"]["code"] == "UNAUTHENTICATED"
        assert (await gql.ok(ME, token=other))["me"]["id"] == alice.id
    await _refused(second_app.ws_url, alice.token)


async def test_logout_everywhere_closes_every_socket_of_the_user_on_every_instance(
    app: AppServer, second_app: AppServer, clients: tuple[GraphQLClient, GraphQLClient]
) -> None:
    gql_a, gql_b = clients
    alice = await register(gql_a)
    bob = await register(gql_a)
    other = await _login(gql_a, alice)
    async with connect(app.ws_url, other) as on_a, connect(second_app.ws_url, alice.token) as on_b, \
            connect(second_app.ws_url, bob.token) as bob_on_b:
        assert await gql_b.ok("mutation { logoutEverywhere }", token=alice.token) == {"logoutEverywhere": True}
        await asyncio.gather(_closed_with(on_a), _closed_with(on_b))
        await _still_open(bob_on_b)
    for token in (alice.token, other):
        assert (await gql_a.error(ME, token=token))["extensions"]["code"] == "UNAUTHENTICATED"
        await _refused(app.ws_url, token)


async def test_change_password_closes_the_old_tokens_sockets_and_the_new_token_connects(
    app: AppServer, second_app: AppServer, clients: tuple[GraphQLClient, GraphQLClient]
) -> None:
    gql_a, gql_b = clients
    alice = await register(gql_a)
    async with connect(second_app.ws_url, alice.token) as on_b:
        fresh = (await gql_a.ok(CHANGE_PASSWORD, {"current": PASSWORD, "new": "another horse battery"},
                                token=alice.token))["changePassword"]["token"]
        await _closed_with(on_b)
    async with connect(second_app.ws_url, fresh) as fresh_on_b:
        await _still_open(fresh_on_b)
    assert (await gql_b.error(ME, token=alice.token))["extensions"]["code"] == "UNAUTHENTICATED"
    assert (await gql_b.ok(ME, token=fresh))["me"]["id"] == alice.id
