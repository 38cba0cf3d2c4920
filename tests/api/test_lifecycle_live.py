"""Edits, reactions and deletes live across two API instances: every member's events on the
other instance, and an edit racing a delete ending the same in Redis, MongoDB, search and
the events."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import redis.asyncio as aioredis

from api.app_server import AppServer
from api.dev_servers import EmbeddedServers
from storage import keys
from storage.ids import direct_conversation_id
from storage.records import StoredMessage
from tests.conftest import shared_mongodb_url
from tests.utils.graphql import GraphQLClient, register, send
from tests.utils.ws import Socket, connect, user_channel, wait_for_subscribers

EVENTS = """subscription { messageEvents { type message { id text editedAt deletedAt
  reactions { emoji count reactedByMe } } } }"""
EDIT = "mutation E($id: ID!, $text: String!) { editMessage(id: $id, text: $text) { id text } }"
DELETE = "mutation D($id: ID!) { deleteMessage(id: $id) { id text deletedAt } }"
REACT = "mutation R($id: ID!, $e: String!) { react(messageId: $id, emoji: $e) { id } }"
MESSAGE = "query M($id: ID!) { message(id: $id) { id text deletedAt editedAt } }"
SEARCH = "query S($q: String!) { search(query: $q) { hits { ... on MessageHit { message { id } } } } }"


async def event(socket: Socket) -> dict[str, Any]:
    return (await socket.next_payload())["data"]["messageEvents"]


async def test_every_member_sees_edits_reactions_and_deletes_on_another_instance(
    app: AppServer, second_app: AppServer, dev_servers: EmbeddedServers
) -> None:
    a, b = app, second_app
    async with httpx.AsyncClient(timeout=30) as http:
        gql_a = GraphQLClient(http, a.graphql_url)
        alice, bob, mallory = await register(gql_a), await register(gql_a), await register(gql_a)
        sent = await send(gql_a, alice, bob, "see you at noon")
        async with (connect(b.ws_url, bob.token) as bob_on_b, connect(a.ws_url, alice.token) as alice_on_a,
                    connect(b.ws_url, mallory.token) as mallory_on_b):
            for socket in (bob_on_b, alice_on_a, mallory_on_b):
                await socket.subscribe(EVENTS)
            for user in (alice, bob, mallory):
                await wait_for_subscribers(dev_servers.redis_url, user_channel(user.id))

            await gql_a.ok(EDIT, {"id": sent["id"], "text": "see you at one"}, token=alice.token)
            for socket in (bob_on_b, alice_on_a):
                edited = await event(socket)
                assert edited["type"] == "UPDATED" and edited["message"]["text"] == "see you at one"
                assert edited["message"]["editedAt"] and edited["message"]["deletedAt"] is None

            await gql_a.ok(REACT, {"id": sent["id"], "e": "👍"}, token=bob.token)
            reacted = [await event(socket) for socket in (bob_on_b, alice_on_a)]
            assert [e["type"] for e in reacted] == ["UPDATED", "UPDATED"]
            # Each subscriber reads the reaction as it concerns them.
            assert reacted[0]["message"]["reactions"] == [{"emoji": "👍", "count": 1, "reactedByMe": True}]
            assert reacted[1]["message"]["reactions"] == [{"emoji": "👍", "count": 1, "reactedByMe": False}]

            await gql_a.ok(DELETE, {"id": sent["id"]}, token=alice.token)
            for socket in (bob_on_b, alice_on_a):
                deleted = await event(socket)
                assert deleted["type"] == "DELETED"
                assert deleted["message"]["text"] == "" and deleted["message"]["deletedAt"]
                assert deleted["message"]["reactions"] == [] and deleted["message"]["id"] == sent["id"]
            await mallory_on_b.expect_silence()  # not a member: nothing


def _archived(mongodb_url: str, message_id: str) -> StoredMessage | None:
    from pymongo import MongoClient

    client: MongoClient[dict[str, Any]] = MongoClient(mongodb_url)
    try:
        doc = client.get_default_database()["messages"].find_one({"_id": message_id})
        return StoredMessage.from_document({**doc, "pk": doc["_id"]}) if doc else None
    finally:
        client.close()


async def test_an_edit_racing_a_delete_ends_deleted_everywhere(
    app: AppServer, second_app: AppServer, dev_servers: EmbeddedServers
) -> None:
    a, b = app, second_app
    redis = aioredis.Redis.from_url(dev_servers.redis_url, decode_responses=True)
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            gql_a, gql_b = GraphQLClient(http, a.graphql_url), GraphQLClient(http, b.graphql_url)
            alice, bob = await register(gql_a), await register(gql_a)
            sent = [await send(gql_a, alice, bob, f"racing message {i}") for i in range(8)]
            async with connect(b.ws_url, bob.token) as bob_on_b:
                await bob_on_b.subscribe(EVENTS)
                await wait_for_subscribers(dev_servers.redis_url, user_channel(bob.id))
                outcomes = await asyncio.gather(*[
                    call for m in sent for call in (
                        gql_a.raw(EDIT, {"id": m["id"], "text": f"edited walrus {m['id']}"}, token=alice.token),
                        gql_b.raw(DELETE, {"id": m["id"]}, token=alice.token),
                    )])
                for edit, delete in zip(outcomes[::2], outcomes[1::2], strict=True):
                    assert not delete.get("errors"), delete
                    # The edit either landed first (then was deleted) or found the tombstone.
                    assert not edit.get("errors") or edit["errors"][0]["extensions"]["code"] == "CONFLICT", edit
                last: dict[str, dict[str, Any]] = {}
                while len([e for e in last.values() if e["type"] == "DELETED"]) < len(sent):
                    seen = await event(bob_on_b)
                    last[seen["message"]["id"]] = seen
                await bob_on_b.expect_silence()  # nothing after the tombstone
            conversation = direct_conversation_id(alice.id, bob.id)
            for m in sent:
                for gql in (gql_a, gql_b):
                    message = (await gql.ok(MESSAGE, {"id": m["id"]}, token=bob.token))["message"]
                    assert message["text"] == "" and message["deletedAt"] and message["editedAt"] is None
                hot = await redis.json().get(keys.message_key(conversation, m["id"]))
                assert hot["text"] == "" and hot["deleted_at_ms"] is not None
            assert (await gql_b.ok(SEARCH, {"q": "walrus"}, token=bob.token))["search"]["hits"] == []
            deadline = time.monotonic() + 30
            while True:  # the persister copies the final revision to MongoDB
                archived = [await asyncio.to_thread(_archived, shared_mongodb_url(dev_servers), m["id"]) for m in sent]
                if all(d is not None and d.deleted_at_ms for d in archived) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            for doc in archived:
                assert doc is not None and doc.deleted_at_ms and doc.text == "" and doc.edited_at_ms is None
    finally:
        await redis.aclose()
