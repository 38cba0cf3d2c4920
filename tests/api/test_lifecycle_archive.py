"""Edit, react and delete messages that have left the Redis hot window (a tiny HOT_WINDOW_DAYS):
MongoDB alone holds them, and history, the message itself and the events reflect every change."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from api.dev_servers import EmbeddedServers
from storage import keys
from storage.ids import direct_conversation_id
from tests.conftest import TEST_JWT_SECRET
from tests.utils.graphql import GraphQLClient, all_history, register, send
from tests.utils.served import ServedApp, served_app
from tests.utils.ws import Socket, connect, user_channel, wait_for_subscribers

WINDOW_SECONDS = 2.0
FIELDS = "id text editedAt deletedAt reactions { emoji count reactedByMe }"
EVENTS = f"subscription {{ messageEvents {{ type message {{ {FIELDS} }} }} }}"
EDIT = f"mutation E($id: ID!, $text: String!) {{ editMessage(id: $id, text: $text) {{ {FIELDS} }} }}"
DELETE = f"mutation D($id: ID!) {{ deleteMessage(id: $id) {{ {FIELDS} }} }}"
REACT = f"mutation R($id: ID!, $e: String!) {{ react(messageId: $id, emoji: $e) {{ {FIELDS} }} }}"
MESSAGE = f"query M($id: ID!) {{ message(id: $id) {{ {FIELDS} }} }}"


@pytest.fixture
async def served(dev_servers: EmbeddedServers, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServedApp]:
    async with served_app(mongodb_base_url=dev_servers.mongodb_url.rsplit("/", 1)[0],
                          work_dir=tmp_path_factory.mktemp("lifecycle-archive"), jwt_secret=TEST_JWT_SECRET,
                          hot_window_days=WINDOW_SECONDS / 86400, hot_window_trim_seconds=0.2) as app:
        yield app


async def _left_redis(redis_url: str, conversation_id: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    try:
        deadline = time.monotonic() + 30
        while await client.zcard(keys.conversation_messages(conversation_id)) > 0:
            assert time.monotonic() < deadline, "the messages never left the hot window"
            await asyncio.sleep(0.2)
    finally:
        await client.aclose()


async def event(socket: Socket) -> dict[str, Any]:
    return (await socket.next_payload())["data"]["messageEvents"]


async def test_archived_messages_are_edited_reacted_to_and_deleted(served: ServedApp) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        gql = GraphQLClient(http, served.graphql_url)
        alice, bob = await register(gql), await register(gql)
        first = await send(gql, alice, bob, "an old message")
        second = await send(gql, alice, bob, "another old one")
        await _left_redis(served.redis_url, direct_conversation_id(alice.id, bob.id))

        async with connect(served.ws_url, bob.token) as bob_ws:
            await bob_ws.subscribe(EVENTS)
            await wait_for_subscribers(served.redis_url, user_channel(bob.id))

            edited = (await gql.ok(EDIT, {"id": first["id"], "text": "an old message, edited"},
                                   token=alice.token))["editMessage"]
            assert edited["text"] == "an old message, edited" and edited["editedAt"]
            assert await event(bob_ws) == {"type": "UPDATED", "message": edited}

            reacted = (await gql.ok(REACT, {"id": first["id"], "e": "🦭"}, token=bob.token))["react"]
            assert reacted["reactions"] == [{"emoji": "🦭", "count": 1, "reactedByMe": True}]
            assert (await event(bob_ws))["message"] == reacted

            tombstone = (await gql.ok(DELETE, {"id": second["id"]}, token=alice.token))["deleteMessage"]
            assert tombstone["text"] == "" and tombstone["deletedAt"]
            assert await event(bob_ws) == {"type": "DELETED", "message": tombstone}

        assert (await gql.ok(MESSAGE, {"id": first["id"]}, token=bob.token))["message"] == reacted
        history = await all_history(gql, bob, alice)
        assert [(m["id"], m["text"]) for m in history] == [(first["id"], "an old message, edited"),
                                                           (second["id"], "")]
        # Still only in MongoDB: the changes did not bring them back into the hot window.
        client = aioredis.Redis.from_url(served.redis_url)
        try:
            assert await client.zcard(keys.conversation_messages(direct_conversation_id(alice.id, bob.id))) == 0
        finally:
            await client.aclose()
