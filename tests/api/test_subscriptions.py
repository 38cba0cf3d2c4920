"""Live events over WebSocket: both protocols, third-party clients, auth, clean-up."""

from __future__ import annotations

import asyncio
import json
import time

import jwt
import pytest
import redis.asyncio as aioredis
import websockets
from gql import Client
from gql import gql as parse_gql
from gql.transport.websockets import WebsocketsTransport

from api.app_server import AppServer
from api.dev_servers import EmbeddedServers
from tests.conftest import TEST_JWT_SECRET
from tests.utils.graphql import GraphQLClient, register, send
from tests.utils.node_client import NodeSubscriber
from tests.utils.served import INSTANCE_LISTENERS
from tests.utils.ws import MESSAGE_EVENTS, connect, user_channel, wait_for_subscribers


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_sender_and_receiver_get_created_and_a_third_user_nothing(
    app: AppServer, gql: GraphQLClient, dev_servers: EmbeddedServers, protocol: str
) -> None:
    alice, bob, carol = await register(gql), await register(gql), await register(gql)
    async with (connect(app.ws_url, alice.token, protocol=protocol) as a,
                connect(app.ws_url, bob.token, protocol=protocol) as b,
                connect(app.ws_url, carol.token, protocol=protocol) as c):
        for socket, user in ((a, alice), (b, bob), (c, carol)):
            await socket.subscribe(MESSAGE_EVENTS)
            await wait_for_subscribers(dev_servers.redis_url, user_channel(user.id))
        sent = await send(gql, alice, bob, "live!")
        for socket in (a, b):
            event = (await socket.next_payload())["data"]["messageEvents"]
            assert event["type"] == "CREATED"
            assert event["message"]["id"] == sent["id"] and event["message"]["text"] == "live!"
            assert event["message"]["sender"]["username"] == alice.username
            assert event["message"]["receiver"]["username"] == bob.username
        await c.expect_silence(0.5)


async def test_python_gql_client_receives_live_messages(
    app: AppServer, gql: GraphQLClient, dev_servers: EmbeddedServers
) -> None:
    alice, bob = await register(gql), await register(gql)
    transport = WebsocketsTransport(
        url=app.ws_url, init_payload={"Authorization": f"Bearer {bob.token}"},
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],  # graphql-transport-ws
    )
    async with Client(transport=transport) as session:
        subscription = session.subscribe(parse_gql("subscription { messageEvents { type message { text senderId } } }"))

        async def first_event() -> dict:
            async for result in subscription:
                return result
            raise AssertionError("subscription ended")

        receiving = asyncio.create_task(first_event())
        await wait_for_subscribers(dev_servers.redis_url, user_channel(bob.id))
        await send(gql, alice, bob, "via gql")
        result = await asyncio.wait_for(receiving, 10)
    assert result["messageEvents"] == {"type": "CREATED", "message": {"text": "via gql", "senderId": alice.id}}


async def test_javascript_graphql_ws_client_receives_live_messages(
    app: AppServer, gql: GraphQLClient, dev_servers: EmbeddedServers
) -> None:
    alice, bob = await register(gql), await register(gql)
    query = "subscription { messageEvents { type message { text senderId } } }"
    async with NodeSubscriber(app.ws_url, bob.token, query, max_events=1, timeout=30) as node:
        await node.wait_for("connected", timeout=20)
        await wait_for_subscribers(dev_servers.redis_url, user_channel(bob.id))
        await send(gql, alice, bob, "hello from python to node")
        event = await node.wait_for("next", timeout=15)
        assert await node.wait(timeout=15) == 0
    assert event["payload"]["data"]["messageEvents"] == {
        "type": "CREATED", "message": {"text": "hello from python to node", "senderId": alice.id}}


def _token(user_id: str, *, secret: str = TEST_JWT_SECRET, ttl: float = 3600) -> str:
    now = int(time.time())
    return jwt.encode({"sub": user_id, "iat": now, "exp": now + ttl}, secret, algorithm="HS256")


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_bad_token_closes_with_4403_before_anything_runs(
    app: AppServer, gql: GraphQLClient, protocol: str
) -> None:
    user = await register(gql)
    for payload in ({}, {"Authorization": "Bearer nonsense"}, {"token": _token(user.id, secret="z" * 64)},
                    {"token": _token(user.id, ttl=-10)}):
        async with websockets.connect(app.ws_url, subprotocols=[protocol]) as ws:  # type: ignore[list-item]  # str for its Subprotocol NewType
            await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    message = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    assert message["type"] != "connection_ack", payload
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


async def test_subscribe_before_init_is_refused(app: AppServer) -> None:
    async with websockets.connect(app.ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]  # str for its Subprotocol NewType
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": MESSAGE_EVENTS}}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_expiring_token_closes_the_socket_with_4403(app: AppServer, gql: GraphQLClient) -> None:
    user = await register(gql)
    async with connect(app.ws_url, _token(user.id, ttl=2)) as socket:
        await socket.subscribe(MESSAGE_EVENTS)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(socket.ws.recv(), 10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


async def test_unsubscribe_and_disconnect_release_everything(
    app_factory, gql: GraphQLClient, dev_servers: EmbeddedServers
) -> None:
    server: AppServer = app_factory().start()
    client = aioredis.Redis.from_url(dev_servers.redis_url)
    try:
        app_gql = GraphQLClient(gql.client, server.graphql_url)
        users = [await register(app_gql) for _ in range(10)]
        channels = [user_channel(u.id) for u in users]
        pubsub_before = await _pubsub_connections(client)
        async with connect(server.ws_url, users[0].token) as first:
            op = await first.subscribe(MESSAGE_EVENTS)
            sockets = [connect(server.ws_url, u.token) for u in users]
            opened = [await s.__aenter__() for s in sockets]
            for socket in opened:
                for _ in range(3):
                    await socket.subscribe(MESSAGE_EVENTS)
            for channel in channels:
                await wait_for_subscribers(dev_servers.redis_url, channel)
            # 31 subscriptions over 11 sockets share ONE Redis pub/sub connection: the one the
            # instance opened at start-up for revocation and block notices (storage/revocations.py,
            # storage/blocks.py).
            assert await _pubsub_connections(client) == pubsub_before
            for socket in sockets:
                await socket.__aexit__(None, None, None)
            await first.complete(op)
            await _until(lambda: _numsub(client, channels), 0)
        # What remains is the instance's own revocation and block listeners.
        stats = await _until(lambda: _stats(server), {"subscriptions": INSTANCE_LISTENERS, "connections": 0})
        assert stats == {"subscriptions": INSTANCE_LISTENERS, "connections": 0}
    finally:
        await client.aclose()
        server.stop()


async def _numsub(client: aioredis.Redis, channels: list[str]) -> int:
    return sum(n for _, n in await client.pubsub_numsub(*channels))


async def _pubsub_connections(client: aioredis.Redis) -> int:
    return sum(1 for c in await client.client_list() if int(c.get("sub", 0)) > 0 or int(c.get("psub", 0)) > 0)


async def _stats(server: AppServer) -> dict[str, int]:
    import httpx

    async with httpx.AsyncClient() as http:
        text = (await http.get(f"{server.url}/metrics")).text
    values = {}
    for line in text.splitlines():
        if line.startswith("chattergram_local_subscriptions "):
            values["subscriptions"] = int(float(line.split()[1]))
        if line.startswith("chattergram_local_websocket_connections "):
            values["connections"] = int(float(line.split()[1]))
    return values


async def _until(probe, expected, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value == expected or time.monotonic() > deadline:
            assert value == expected
            return value
        await asyncio.sleep(0.05)


async def test_a_second_connection_init_is_refused_and_leaks_no_presence(
    app: AppServer, gql: GraphQLClient
) -> None:
    user = await register(gql)
    for protocol in ("graphql-ws", "graphql-transport-ws"):
        async with websockets.connect(app.ws_url, subprotocols=[protocol]) as ws:  # type: ignore[list-item]  # str for its Subprotocol NewType
            init = json.dumps({"type": "connection_init", "payload": {"token": user.token}})
            await ws.send(init)
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            await ws.send(json.dumps({"type": "connection_init", "payload": {"token": "bad"}}))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4429
        me = {}
        for _ in range(100):
            me = (await gql.ok("{ me { online } }", token=user.token))["me"]
            if not me["online"]:
                break
            await asyncio.sleep(0.05)
        assert me == {"online": False}, protocol
