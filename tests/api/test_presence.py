"""Presence: online while a connection is open, across tabs and instances, crash-safe."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import httpx

from api.app_server import AppServer, start_together
from api.dev_servers import EmbeddedServers
from tests.utils.graphql import ME, GraphQLClient, register
from tests.utils.ws import PRESENCE, PRESENCE_CHANNEL, Socket, connect, wait_for_subscribers

ONLINE_ONLY = "query { users(onlineOnly: true, first: 200) { edges { node { id online } } } }"
FAST_PRESENCE = {"PRESENCE_TTL_SECONDS": "3", "PRESENCE_HEARTBEAT_SECONDS": "0.5"}


async def next_change(watcher: Socket, user_id: str, timeout: float = 10.0) -> dict[str, Any]:
    """The next presence event about `user_id` (events about other users are skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        event = (await watcher.next_payload(max(deadline - time.monotonic(), 0.01)))["data"]["presence"]
        if event["user"]["id"] == user_id:
            return event


async def no_change(watcher: Socket, user_id: str, seconds: float = 1.0) -> None:
    with contextlib.suppress(TimeoutError):
        event = await next_change(watcher, user_id, seconds)
        raise AssertionError(f"unexpected presence event {event}")


async def eventually_last_seen(gql: GraphQLClient, token: str, timeout: float = 10.0) -> dict[str, Any]:
    """`me` once lastSeenAt is recorded (written right after the offline event)."""
    deadline = time.monotonic() + timeout
    while True:
        me = (await gql.ok(ME, token=token))["me"]
        if me["lastSeenAt"] is not None or time.monotonic() > deadline:
            return me
        await asyncio.sleep(0.05)


async def online_ids(gql: GraphQLClient, token: str) -> set[str]:
    data = await gql.ok(ONLINE_ONLY, token=token)
    return {edge["node"]["id"] for edge in data["users"]["edges"]}


async def test_online_until_the_last_tab_closes(
    app: AppServer, gql: GraphQLClient, dev_servers: EmbeddedServers
) -> None:
    watcher_user, alice = await register(gql), await register(gql)
    async with connect(app.ws_url, watcher_user.token) as watcher:
        await watcher.subscribe(PRESENCE)
        await wait_for_subscribers(dev_servers.redis_url, PRESENCE_CHANNEL)
        tab1 = connect(app.ws_url, alice.token)
        await tab1.__aenter__()
        event = await next_change(watcher, alice.id)
        assert event["online"] is True and event["user"]["online"] is True and event["at"].endswith("Z")
        assert alice.id in await online_ids(gql, watcher_user.token)
        assert (await gql.ok(ME, token=alice.token))["me"]["online"] is True

        async with connect(app.ws_url, alice.token):  # a second tab: no new event
            await no_change(watcher, alice.id, 0.5)
        await no_change(watcher, alice.id, 0.5)  # closing it leaves alice online
        assert alice.id in await online_ids(gql, watcher_user.token)

        await tab1.__aexit__(None, None, None)
        event = await next_change(watcher, alice.id)
        assert event["online"] is False and event["user"]["online"] is False
    assert alice.id not in await online_ids(gql, watcher_user.token)
    me = await eventually_last_seen(gql, alice.token)
    assert me["online"] is False and me["lastSeenAt"] is not None


async def test_presence_crosses_instances_and_a_crashed_instance_goes_offline(
    app_factory: Callable[..., AppServer], dev_servers: EmbeddedServers
) -> None:
    a, b = start_together(app_factory(**FAST_PRESENCE), app_factory(**FAST_PRESENCE))
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            gql_a = GraphQLClient(http, a.graphql_url)
            watcher_user, alice = await register(gql_a), await register(gql_a)
            async with connect(a.ws_url, watcher_user.token) as watcher:
                await watcher.subscribe(PRESENCE)
                await wait_for_subscribers(dev_servers.redis_url, PRESENCE_CHANNEL)
                alice_on_b = connect(b.ws_url, alice.token)
                await alice_on_b.__aenter__()
                assert (await next_change(watcher, alice.id))["online"] is True
                assert alice.id in await online_ids(gql_a, watcher_user.token)

                started = time.monotonic()
                b.kill()  # no goodbye: B's connections must expire
                event = await next_change(watcher, alice.id, timeout=15)
                elapsed = time.monotonic() - started
                assert event["online"] is False
                assert 1.0 < elapsed < 12, elapsed  # after the 3 s TTL, not before
                with contextlib.suppress(Exception):
                    await alice_on_b.__aexit__(None, None, None)
            assert alice.id not in await online_ids(gql_a, watcher_user.token)
            assert (await eventually_last_seen(gql_a, alice.token))["lastSeenAt"] is not None
    finally:
        a.stop()
        b.stop()
