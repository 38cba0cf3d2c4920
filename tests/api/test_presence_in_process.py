"""Presence against the app served in-process: ghosts and the cost of an event's fan-out.

A WebSocket that closes right after `subscribe` leaves nobody online and nothing held.

The ghost: Strawberry's shutdown cancels the socket's operations and waits for them before
our session is released. On Python 3.11 asyncio.wait_for (redis-py awaits every socket write
through it) swallows a cancel that lands as the write completes; the subscription then went on
to wait for events forever, the socket's handler never finished, and its user stayed online,
heartbeated by the instance forever."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets
from redis.asyncio.client import PubSub

from api.dev_servers import EmbeddedServers
from storage.connections import close_redis, open_redis
from tests.conftest import TEST_JWT_SECRET
from tests.utils.graphql import Account, GraphQLClient, register
from tests.utils.served import INSTANCE_LISTENERS, ServedApp, served_app
from tests.utils.ws import PRESENCE, Socket, connect


@pytest.fixture(scope="module")
async def served(dev_servers: EmbeddedServers, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServedApp]:
    async with served_app(mongodb_base_url=dev_servers.mongodb_url.rsplit("/", 1)[0],
                          work_dir=tmp_path_factory.mktemp("served"), jwt_secret=TEST_JWT_SECRET) as app:
        yield app


async def account(served: ServedApp) -> Account:
    async with httpx.AsyncClient(timeout=30) as http:
        return await register(GraphQLClient(http, served.graphql_url))


async def init_and_subscribe(ws: websockets.ClientConnection, token: str) -> None:
    await ws.send(json.dumps({"type": "connection_init", "payload": {"token": token}}))
    kind = "subscribe" if ws.subprotocol == "graphql-transport-ws" else "start"  # graphql-ws: legacy
    await ws.send(json.dumps({"id": "1", "type": kind, "payload": {"query": PRESENCE}}))




async def nothing_held(served: ServedApp, timeout: float = 3.0) -> dict[str, Any]:
    """What the instance still holds for clients once it settled (or at the deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        held = {"online": await served.runtime.presence.online_page(after=None, count=10),
                "connections": served.runtime.presence.local_connections,
                "subscriptions": served.runtime.hub.local_subscriptions - INSTANCE_LISTENERS}
        if not any(held.values()) or time.monotonic() > deadline:
            return held
        await asyncio.sleep(0.05)


async def test_connect_subscribe_close_at_once_many_times(served: ServedApp) -> None:
    user = await account(served)
    for _ in range(80):
        async with websockets.connect(served.ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]  # str for its Subprotocol NewType
            await init_and_subscribe(ws, user.token)
    assert await nothing_held(served) == {"online": [], "connections": 0, "subscriptions": 0}


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_an_operation_that_swallows_its_cancel_keeps_nobody_online(
    served: ServedApp, monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    """Deterministic: the hub's SUBSCRIBE swallows the cancel, as asyncio.wait_for does in the race."""
    user = await account(served)
    entered = asyncio.Event()
    subscribe = PubSub.subscribe

    async def swallowing_subscribe(self: PubSub, *args: Any, **kwargs: Any) -> Any:
        entered.set()
        # What asyncio.wait_for does on 3.11 when the write it waits for completes meanwhile:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0.5)
        return await subscribe(self, *args, **kwargs)

    monkeypatch.setattr(PubSub, "subscribe", swallowing_subscribe)
    async with websockets.connect(served.ws_url, subprotocols=[protocol]) as ws:  # type: ignore[list-item]  # str for its Subprotocol NewType
        await init_and_subscribe(ws, user.token)
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await asyncio.wait_for(entered.wait(), 5)
    assert await nothing_held(served) == {"online": [], "connections": 0, "subscriptions": 0}


LOOKUPS = ("json.mget", "zmscore")  # what loading a user with its online flag sends


async def lookups_for_one_event(served: ServedApp, mover: Account, watchers: list[Account]) -> int:
    """Redis user lookups made while `watchers` presence subscribers receive `mover` going online."""
    assert (await nothing_held(served))["online"] == []  # no event of an earlier round pending
    redis = await open_redis(served.redis_url)
    try:
        async with contextlib.AsyncExitStack() as stack:
            sockets: list[Socket] = [await stack.enter_async_context(connect(served.ws_url, w.token))
                                     for w in watchers]
            for socket in sockets:
                await socket.subscribe(PRESENCE)
            while served.runtime.hub.local_subscriptions < len(watchers) + INSTANCE_LISTENERS:
                await asyncio.sleep(0.01)
            await redis.config_resetstat()
            async with connect(served.ws_url, mover.token):
                for socket in sockets:
                    event = (await socket.next_payload())["data"]["presence"]
                    assert event["online"] and event["user"] == {"id": mover.id, "username": mover.username,
                                                                 "online": True}
            stats = await redis.info("commandstats")
        return sum(stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in LOOKUPS)
    finally:
        await close_redis(redis)


async def test_one_event_costs_the_same_redis_calls_for_one_or_five_subscribers(served: ServedApp) -> None:
    mover, *watchers = [await account(served) for _ in range(6)]
    one = await lookups_for_one_event(served, mover, watchers[:1])
    five = await lookups_for_one_event(served, mover, watchers)
    assert one == five <= 1, (one, five)  # the connecting user's own profile, read once
