"""Conversations list, unread counts, read receipts and typing notices, end to end."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import redis

from api.app_server import AppServer
from api.dev_servers import EmbeddedServers, start_redis
from storage import keys
from tests.conftest import mongodb_url
from tests.utils.graphql import Account, GraphQLClient, register, send
from tests.utils.ws import Socket, connect, wait_for_subscribers

CONVERSATIONS = """query C($first: Int, $after: String) {
  conversations(first: $first, after: $after) {
    edges { cursor node { partner { id username } unreadCount lastReadAt partnerLastReadAt
      lastMessage { id text senderId } } }
    pageInfo { hasNextPage endCursor }
  }
}"""
MARK_READ = """mutation R($p: ID!, $u: ID!) { markRead(partnerId: $p, upTo: $u) {
  unreadCount lastReadAt partnerLastReadAt partner { id } } }"""
TYPING = "mutation T($p: ID!, $t: Boolean!) { setTyping(partnerId: $p, typing: $t) }"
EVENTS = "subscription { conversationEvents { type partnerId at upTo } }"


def conversation_channel(user_id: str) -> str:
    return f"cg:events:conv:{user_id}"


async def listing(gql: GraphQLClient, user: Account, first: int = 20) -> list[dict[str, Any]]:
    nodes, after = [], None
    while True:
        page = (await gql.ok(CONVERSATIONS, {"first": first, "after": after}, token=user.token))["conversations"]
        nodes += [e["node"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return nodes
        after = page["pageInfo"]["endCursor"]


async def next_event(socket: Socket, timeout: float = 10.0) -> dict[str, Any]:
    return (await socket.next_payload(timeout))["data"]["conversationEvents"]


async def test_unread_counts_and_read_receipts_across_instances(
    app: AppServer, second_app: AppServer, dev_servers: EmbeddedServers
) -> None:
    a, b = app, second_app
    async with httpx.AsyncClient(timeout=30) as http:
        gql_a, gql_b = GraphQLClient(http, a.graphql_url), GraphQLClient(http, b.graphql_url)
        alice, bob = await register(gql_a), await register(gql_b)
        sent = [await send(gql_b, alice, bob, f"message {i}") for i in range(3)]

        [conversation] = await listing(gql_a, bob)
        assert conversation["partner"]["id"] == alice.id
        assert conversation["unreadCount"] == 3 and conversation["lastMessage"]["id"] == sent[2]["id"]
        assert conversation["lastReadAt"] is None and conversation["partnerLastReadAt"] is None
        assert (await listing(gql_b, alice))[0]["unreadCount"] == 0  # your own messages are read

        async with connect(b.ws_url, alice.token) as alice_events:
            await alice_events.subscribe(EVENTS)
            await wait_for_subscribers(dev_servers.redis_url, conversation_channel(alice.id))
            read = (await gql_a.ok(MARK_READ, {"p": alice.id, "u": sent[1]["id"]}, token=bob.token))["markRead"]
            assert read["unreadCount"] == 1 and read["lastReadAt"] is not None
            event = await next_event(alice_events)
            assert event["type"] == "READ" and event["partnerId"] == bob.id and event["upTo"] == sent[1]["id"]

            # A stale markRead does not move the marker back.
            stale = (await gql_a.ok(MARK_READ, {"p": alice.id, "u": sent[0]["id"]}, token=bob.token))["markRead"]
            assert stale["unreadCount"] == 1 and stale["lastReadAt"] == read["lastReadAt"]
            await alice_events.expect_silence(0.5)

        seen_by_alice = (await listing(gql_b, alice))[0]
        assert seen_by_alice["partnerLastReadAt"] == read["lastReadAt"]
        await send(gql_a, alice, bob, "one more")  # through the other instance
        assert (await listing(gql_b, bob))[0]["unreadCount"] == 2
        last = (await listing(gql_a, bob))[0]["lastMessage"]["id"]
        marked = (await gql_b.ok(MARK_READ, {"p": alice.id, "u": last}, token=bob.token))["markRead"]
        assert marked["unreadCount"] == 0


async def test_most_recent_first_and_paginated(gql: GraphQLClient) -> None:
    me = await register(gql)
    partners = [await register(gql) for _ in range(5)]
    for partner in partners:
        await send(gql, partner, me, f"hi from {partner.username}")
    await send(gql, me, partners[1], "bumps partner 1 to the top")
    nodes = await listing(gql, me, first=2)
    order = [n["partner"]["id"] for n in nodes]
    assert order == [partners[1].id, partners[4].id, partners[3].id, partners[2].id, partners[0].id]
    assert [n["unreadCount"] for n in nodes] == [1, 1, 1, 1, 1]


async def test_typing_notices(app: AppServer, gql: GraphQLClient, dev_servers: EmbeddedServers) -> None:
    alice, bob, stranger = await register(gql), await register(gql), await register(gql)
    async with connect(app.ws_url, alice.token) as events:
        await events.subscribe(EVENTS)
        await wait_for_subscribers(dev_servers.redis_url, conversation_channel(alice.id))
        assert (await gql.ok(TYPING, {"p": alice.id, "t": True}, token=bob.token))["setTyping"] is True
        started = await next_event(events)
        assert started["type"] == "TYPING_STARTED" and started["partnerId"] == bob.id
        await gql.ok(TYPING, {"p": alice.id, "t": False}, token=bob.token)
        assert (await next_event(events))["type"] == "TYPING_STOPPED"

        # A burst of refreshes makes at most a few events (one start at most per 2 s).
        await asyncio.sleep(2.1)
        await asyncio.gather(*[gql.ok(TYPING, {"p": alice.id, "t": True}, token=bob.token) for _ in range(50)])
        burst = [await next_event(events)]
        with_silence = time.monotonic()
        # ... and stops by itself ~5 s after the last refresh.
        stopped = await next_event(events, timeout=10)
        assert burst[0]["type"] == "TYPING_STARTED" and stopped["type"] == "TYPING_STOPPED"
        assert 3.5 < time.monotonic() - with_silence < 9
        await events.expect_silence(0.5)

        # Typing to someone you never talked to is fine if they exist; nobody else hears it.
        await gql.ok(TYPING, {"p": stranger.id, "t": True}, token=bob.token)
        await events.expect_silence(0.5)
        unknown = await gql.error(TYPING, {"p": "01" + "0" * 24, "t": True}, token=bob.token)
        assert unknown["extensions"] == {"code": "NOT_FOUND", "field": "partnerId"}


async def test_only_participants_touch_a_conversation(gql: GraphQLClient) -> None:
    alice, bob, carol = await register(gql), await register(gql), await register(gql)
    theirs = await send(gql, alice, bob, "between alice and bob")
    mine = await send(gql, carol, alice, "carol to alice")
    for partner, up_to in ((alice, theirs["id"]), (bob, theirs["id"]), (alice, "nope")):
        error = await gql.error(MARK_READ, {"p": partner.id, "u": up_to}, token=carol.token)
        assert error["extensions"]["code"] in ("NOT_FOUND", "BAD_USER_INPUT")
        assert error["extensions"]["field"] == "upTo"
    # A message of another of your conversations is not a marker for this one.
    wrong = await gql.error(MARK_READ, {"p": bob.id, "u": mine["id"]}, token=alice.token)
    assert wrong["extensions"] == {"code": "NOT_FOUND", "field": "upTo"}
    assert [n["unreadCount"] for n in await listing(gql, bob)] == [1]
    assert (await gql.error(CONVERSATIONS, {"first": 5}))["extensions"]["code"] == "UNAUTHENTICATED"
    assert (await gql.error(CONVERSATIONS, {"first": 101}, token=bob.token))["extensions"]["field"] == "first"
    assert (await gql.error(CONVERSATIONS, {"after": "bad!"}, token=bob.token))["extensions"]["field"] == "after"


async def test_conversations_are_rebuilt_after_a_redis_wipe(
    app_factory: Callable[..., AppServer], dev_servers: EmbeddedServers, tmp_path: Path
) -> None:
    own_redis = start_redis(tmp_path / "redis")
    server = app_factory(redis_url=own_redis.url, mongodb_url=mongodb_url(dev_servers, "conversations_wipe")).start()
    client = redis.Redis.from_url(own_redis.url)
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            gql = GraphQLClient(http, server.graphql_url)
            me, ann, ben = await register(gql), await register(gql), await register(gql)
            first = [await send(gql, ann, me, f"ann {i}") for i in range(3)]
            await send(gql, ben, me, "ben 0")
            await send(gql, me, ben, "reply to ben")
            await gql.ok(MARK_READ, {"p": ann.id, "u": first[0]["id"]}, token=me.token)
            before = await listing(gql, me)
            assert [n["unreadCount"] for n in before] == [1, 2]
            deadline = time.monotonic() + 30
            while sum(client.xlen(k) for k in keys.outbox_streams()) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)  # everything persisted, read marker included
            server.stop()
            client.flushall()
            server.start()
            after = await listing(gql, me)
            assert [(n["partner"]["id"], n["unreadCount"], n["lastMessage"]["id"], n["lastReadAt"]) for n in after] == [
                (n["partner"]["id"], n["unreadCount"], n["lastMessage"]["id"], n["lastReadAt"]) for n in before]
    finally:
        client.close()
        server.stop()
        own_redis.stop()
