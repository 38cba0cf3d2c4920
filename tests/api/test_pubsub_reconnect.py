"""The app's one Redis pub/sub connection drops (`CLIENT KILL TYPE pubsub`): every
subscription open at that moment ends with the documented `RESUBSCRIBE` code (events
published meanwhile may be lost), and a subscription made afterwards receives new events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from api.app_server import AppServer
from tests.utils.graphql import GraphQLClient, register, send
from tests.utils.ws import (
    MESSAGE_EVENTS,
    PRESENCE,
    PRESENCE_CHANNEL,
    Socket,
    connect,
    user_channel,
    wait_for_subscribers,
)


@pytest.fixture(scope="module")
async def deployment(
    app_factory: Callable[..., AppServer], own_deployment: Callable[[], dict[str, str]]
) -> AsyncIterator[tuple[AppServer, str]]:
    """An app on a Redis of its own: killing its pub/sub connection disturbs no other app."""
    servers = own_deployment()
    app = app_factory(**servers, STT_ENGINE="none").start()
    yield app, servers["redis_url"]
    app.stop()


async def _messages_until_complete(socket: Socket, op_id: str) -> list[dict[str, Any]]:
    """The payloads operation `op_id` gets before its `complete` (keep-alives skipped)."""
    payloads = []
    while True:
        message = json.loads(await asyncio.wait_for(socket.ws.recv(), 10))
        if message["type"] in ("ka", "ping", "pong"):
            continue
        assert message["id"] == op_id, message
        if message["type"] == "complete":
            return payloads
        assert message["type"] in ("next", "data"), message
        payloads.append(message["payload"])


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_a_dropped_pubsub_connection_ends_subscriptions_with_resubscribe(
    deployment: tuple[AppServer, str], protocol: str
) -> None:
    app, redis_url = deployment
    admin = aioredis.Redis.from_url(redis_url)
    async with httpx.AsyncClient(timeout=30) as http:
        gql = GraphQLClient(http, app.graphql_url)
        alice, bob = await register(gql), await register(gql)
        async with connect(app.ws_url, bob.token, protocol=protocol) as b:
            events = await b.subscribe(MESSAGE_EVENTS)
            await wait_for_subscribers(redis_url, user_channel(bob.id))
            await send(gql, alice, bob, "before the drop")
            assert (await b.next_payload())["data"]["messageEvents"]["message"]["text"] == "before the drop"
            presence = await b.subscribe(PRESENCE)
            await wait_for_subscribers(redis_url, PRESENCE_CHANNEL)

            assert await admin.client_kill_filter(_type="pubsub") >= 1  # the hub's (and any other listener's)

            # Both subscriptions end, each with one error and no data: resubscribe and refetch.
            ended: dict[str, list[dict[str, Any]]] = {}
            for _ in range(2):
                message = json.loads(await asyncio.wait_for(b.ws.recv(), 10))
                assert message["type"] in ("next", "data"), message
                ended[message["id"]] = [message["payload"], *await _messages_until_complete(b, message["id"])]
            assert ended.keys() == {events, presence}
            for payloads in ended.values():
                [payload] = payloads
                assert payload["data"] is None
                [error] = payload["errors"]
                assert error["extensions"] == {"code": "RESUBSCRIBE", "reason": "CONNECTION_LOST"}, error

            # A new subscription (same socket) works normally.
            await b.subscribe(MESSAGE_EVENTS)
            await wait_for_subscribers(redis_url, user_channel(bob.id))
            await send(gql, alice, bob, "after the drop")
            assert (await b.next_payload())["data"]["messageEvents"]["message"]["text"] == "after the drop"
    await admin.aclose()
    assert "unexpected error" not in app.log()  # an interruption is not an INTERNAL_SERVER_ERROR
    assert "pub/sub connection lost" in app.log()
