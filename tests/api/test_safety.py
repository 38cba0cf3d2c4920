"""Blocking against the served app: presence hidden both ways (events, online lists, user
fields) and back after unblocking; a block reaches another instance that had cached the pair."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection
from contextlib import AsyncExitStack
from typing import Any

from api.app_server import AppServer
from api.dev_servers import EmbeddedServers
from tests.utils.graphql import Account, GraphQLClient, register
from tests.utils.ws import PRESENCE, PRESENCE_CHANNEL, Socket, connect, wait_for_subscribers

BLOCK = "mutation B($u: ID!) { blockUser(userId: $u) }"
UNBLOCK = "mutation U($u: ID!) { unblockUser(userId: $u) }"
ONLINE_ONLY = "query { users(onlineOnly: true, first: 200) { edges { node { id online } } } }"
USER = "query N($id: ID!) { node(id: $id) { ... on User { online lastSeenAt } } }"
SEND = "mutation S($input: SendMessageInput!) { sendMessage(input: $input) { id } }"


async def next_about(watcher: Socket, user_ids: Collection[str], timeout: float = 10.0) -> dict[str, Any]:
    """The next presence event about one of `user_ids` (other users' events are skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        event = (await watcher.next_payload(max(deadline - time.monotonic(), 0.01)))["data"]["presence"]
        if event["user"]["id"] in user_ids:
            return dict(event)


class Presence:
    def __init__(self, app: AppServer, gql: GraphQLClient, stack: AsyncExitStack) -> None:
        self.app, self.gql, self.stack = app, gql, stack

    async def watch(self, user: Account) -> Socket:
        socket = await self.stack.enter_async_context(connect(self.app.ws_url, user.token))
        await socket.subscribe(PRESENCE)
        return socket

    async def beacon(self, watchers: list[Socket], hidden: Collection[str]) -> None:
        """A new user comes online; each watcher's next event about them or `hidden` must be
        theirs: it is subscribed, and no event about `hidden` reached it before."""
        beacon = await register(self.gql)
        await self.stack.enter_async_context(connect(self.app.ws_url, beacon.token))
        for watcher in watchers:
            event = await next_about(watcher, {beacon.id, *hidden})
            assert event["user"]["id"] == beacon.id and event["online"], event


async def online_ids(gql: GraphQLClient, viewer: Account) -> set[str]:
    data = await gql.ok(ONLINE_ONLY, token=viewer.token)
    return {edge["node"]["id"] for edge in data["users"]["edges"]}


async def seen(gql: GraphQLClient, viewer: Account, user: Account) -> dict[str, Any]:
    return dict((await gql.ok(USER, {"id": user.id}, token=viewer.token))["node"])


async def until(probe: Callable[[], Any], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await probe():
        assert time.monotonic() < deadline, "condition never met"
        await asyncio.sleep(0.05)


async def test_neither_sees_the_others_presence_until_unblocked(
    app: AppServer, gql: GraphQLClient, dev_servers: EmbeddedServers
) -> None:
    alice, bob, carol = await register(gql), await register(gql), await register(gql)
    await gql.ok(BLOCK, {"u": bob.id}, token=alice.token)
    async with AsyncExitStack() as stack:
        presence = Presence(app, gql, stack)
        by_carol = await presence.watch(carol)
        await wait_for_subscribers(dev_servers.redis_url, PRESENCE_CHANNEL)
        alice_socket = connect(app.ws_url, alice.token)
        by_alice = await alice_socket.__aenter__()
        await by_alice.subscribe(PRESENCE)
        await presence.beacon([by_carol, by_alice], hidden=())
        by_bob = await presence.watch(bob)
        assert (await next_about(by_carol, {bob.id}))["online"]  # others see bob come online
        await presence.beacon([by_alice], hidden={bob.id})  # alice does not

        assert bob.id not in await online_ids(gql, alice) and alice.id not in await online_ids(gql, bob)
        assert {alice.id, bob.id} <= await online_ids(gql, carol)
        assert await seen(gql, alice, bob) == {"online": False, "lastSeenAt": None}
        assert await seen(gql, bob, alice) == {"online": False, "lastSeenAt": None}
        assert (await seen(gql, carol, bob))["online"]

        await alice_socket.__aexit__(None, None, None)
        assert not (await next_about(by_carol, {alice.id}))["online"]  # others see alice leave
        await presence.beacon([by_bob], hidden={alice.id})  # bob does not
        await until(lambda: _has_last_seen(gql, carol, alice))
        assert await seen(gql, bob, alice) == {"online": False, "lastSeenAt": None}

        await gql.ok(UNBLOCK, {"u": bob.id}, token=alice.token)
        by_alice = await presence.watch(alice)
        assert (await next_about(by_bob, {alice.id}))["online"]  # bob sees alice again
        assert bob.id in await online_ids(gql, alice) and alice.id in await online_ids(gql, bob)
        assert (await seen(gql, alice, bob))["online"]
        await presence.beacon([by_alice], hidden=())


async def _has_last_seen(gql: GraphQLClient, viewer: Account, user: Account) -> bool:
    return (await seen(gql, viewer, user))["lastSeenAt"] is not None


async def test_a_block_reaches_an_instance_that_cached_the_pair(second_app: AppServer, gql: GraphQLClient) -> None:
    other = GraphQLClient(gql.client, second_app.graphql_url)  # same Redis and MongoDB
    alice, bob = await register(gql), await register(gql)
    await other.ok(SEND, {"input": {"receiverId": alice.id, "text": "hi"}}, token=bob.token)  # cached there
    await gql.ok(BLOCK, {"u": bob.id}, token=alice.token)  # on the first instance

    async def refused() -> bool:
        body = await other.raw(SEND, {"input": {"receiverId": alice.id, "text": "still there?"}}, token=bob.token)
        return bool(body.get("errors")) and body["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    await until(refused)
    await gql.ok(UNBLOCK, {"u": bob.id}, token=alice.token)
    await until(lambda: _sent(other, bob, alice))


async def _sent(gql: GraphQLClient, sender: Account, receiver: Account) -> bool:
    body = await gql.raw(SEND, {"input": {"receiverId": receiver.id, "text": "back"}}, token=sender.token)
    return not body.get("errors")
