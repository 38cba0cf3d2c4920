"""Replies (sendMessage's replyToId, Message.replyTo): in 1:1 and groups, refused across
conversations and to outsiders, read in one batch per history page, still resolved once the
replied-to message left the Redis hot window for the MongoDB archive, and shown as it is now
(edited, or a tombstone)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from pymongo import AsyncMongoClient

from storage import keys
from tests.utils.graphql import Account, GraphQLClient, register
from tests.utils.in_process import InProcessApp, InProcessApps

QUOTED = "replyTo { id text senderId conversationId replyTo { id } }"
SEND = f"""mutation S($input: SendMessageInput!) {{ sendMessage(input: $input) {{
  id conversationId text {QUOTED} }} }}"""
HISTORY = f"""query H($c: ID, $p: ID, $last: Int) {{ history(conversationId: $c, partnerId: $p, last: $last) {{
  edges {{ node {{ id text {QUOTED} }} }} }} }}"""
MESSAGE = f"query M($id: ID!) {{ message(id: $id) {{ id {QUOTED} }} }}"
CREATE = "mutation C($input: CreateGroupInput!) { createGroup(input: $input) { id } }"


async def send(gql: GraphQLClient, sender: Account, text: str, **to: Any) -> dict[str, Any]:
    return (await gql.ok(SEND, {"input": {"text": text, **to}}, token=sender.token))["sendMessage"]


async def history(gql: GraphQLClient, viewer: Account, last: int = 50, **of: Any) -> list[dict[str, Any]]:
    return [e["node"] for e in (await gql.ok(HISTORY, {**of, "last": last}, token=viewer.token))["history"]["edges"]]


async def test_a_reply_quotes_its_message_in_1_to_1_and_in_a_group(gql: GraphQLClient) -> None:
    alice, bob, carol = await register(gql), await register(gql), await register(gql)
    hello = await send(gql, alice, "hello bob", receiverId=bob.id)
    assert hello["replyTo"] is None
    answer = await send(gql, bob, "hi alice", receiverId=alice.id, replyToId=hello["id"])
    expected = {"id": hello["id"], "text": "hello bob", "senderId": alice.id,
                "conversationId": hello["conversationId"], "replyTo": None}
    assert answer["replyTo"] == expected
    for viewer in (alice, bob):
        assert [(m["text"], m["replyTo"]) for m in await history(gql, viewer, p=bob.id if viewer is alice else alice.id)
                ] == [("hello bob", None), ("hi alice", expected)]
        assert (await gql.ok(MESSAGE, {"id": answer["id"]}, token=viewer.token))["message"]["replyTo"] == expected
    group = (await gql.ok(CREATE, {"input": {"title": "Crew", "memberIds": [bob.id, carol.id]}},
                          token=alice.token))["createGroup"]["id"]
    plan = await send(gql, carol, "plan?", conversationId=group)
    first = await send(gql, alice, "friday", conversationId=group, replyToId=plan["id"])
    second = await send(gql, bob, "works", conversationId=group, replyToId=first["id"])  # a reply to a reply
    assert second["replyTo"] == {"id": first["id"], "text": "friday", "senderId": alice.id,
                                 "conversationId": group, "replyTo": {"id": plan["id"]}}
    for viewer in (alice, bob, carol):
        assert [(m["id"], (m["replyTo"] or {}).get("id")) for m in await history(gql, viewer, c=group)] == [
            (plan["id"], None), (first["id"], plan["id"]), (second["id"], first["id"])]


async def test_replies_outside_the_conversation_or_malformed_are_refused_and_store_nothing(gql: GraphQLClient) -> None:
    alice, bob, mallory = await register(gql), await register(gql), await register(gql)
    private = await send(gql, alice, "between us", receiverId=bob.id)
    group = (await gql.ok(CREATE, {"input": {"title": "Crew", "memberIds": [bob.id]}},
                          token=alice.token))["createGroup"]["id"]
    in_group = await send(gql, alice, "group only", conversationId=group)
    await send(gql, mallory, "hi alice", receiverId=alice.id)
    refusals = [
        (mallory, {"receiverId": alice.id, "replyToId": private["id"]}, "NOT_FOUND"),  # not hers to see
        (mallory, {"receiverId": bob.id, "replyToId": in_group["id"]}, "NOT_FOUND"),
        (alice, {"receiverId": bob.id, "replyToId": in_group["id"]}, "NOT_FOUND"),  # hers, another conversation
        (bob, {"conversationId": group, "replyToId": private["id"]}, "NOT_FOUND"),
        (alice, {"receiverId": bob.id, "replyToId": "0" * 26}, "NOT_FOUND"),  # well-formed, no such message
        (alice, {"receiverId": bob.id, "replyToId": "not an id"}, "BAD_USER_INPUT"),
        (alice, {"conversationId": group, "replyToId": ""}, "BAD_USER_INPUT"),
    ]
    for sender, to, code in refusals:
        error = await gql.error(SEND, {"input": {"text": "sneaky", **to}}, token=sender.token)
        assert error["extensions"] == {"code": code, "field": "replyToId"}, (to, error)
    # An outsider is refused on the conversation before the reply is looked at.
    error = await gql.error(SEND, {"input": {"text": "x", "conversationId": group, "replyToId": in_group["id"]}},
                            token=mallory.token)
    assert error["extensions"] == {"code": "NOT_FOUND", "field": "conversationId"}
    assert [m["text"] for m in await history(gql, bob, p=alice.id)] == ["between us"]
    assert [m["text"] for m in await history(gql, bob, c=group)] == ["group only"]
    assert [m["text"] for m in await history(gql, alice, p=mallory.id)] == ["hi alice"]


async def commands_during(redis_url: str, action: Callable[[], Awaitable[Any]]) -> list[list[str]]:
    """Every command Redis ran while `action` ran (MONITOR), up to a marker sent after it."""
    marker = f"replies-end-{time.monotonic_ns()}"
    watcher, client = aioredis.Redis.from_url(redis_url), aioredis.Redis.from_url(redis_url)
    seen: list[list[str]] = []
    try:
        async with watcher.monitor() as monitor:
            await client.ping()  # MONITOR is on before the action starts
            await action()
            await client.echo(marker)
            async for entry in monitor.listen():
                command = [part.strip('"') for part in entry["command"].split()]
                if command[:2] == ["ECHO", marker]:
                    break
                seen.append(command)
    finally:
        await watcher.aclose()
        await client.aclose()
    return seen


async def wait_archived(app: InProcessApp, ids: list[str]) -> None:
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(app.mongodb_url)
    try:
        deadline = time.monotonic() + 30
        while await mongo[app.database]["messages"].count_documents({"_id": {"$in": ids}}) < len(ids):
            assert time.monotonic() < deadline, "archived within 30 s"
            await asyncio.sleep(0.1)
    finally:
        await mongo.close()


async def test_a_history_page_reads_its_replied_to_messages_in_one_round_trip(
    gql: GraphQLClient, in_process_app: InProcessApp
) -> None:
    alice, bob = await register(gql), await register(gql)
    originals = [await send(gql, alice, f"question {i}", receiverId=bob.id) for i in range(5)]
    replies = [await send(gql, bob, f"answer {i}", receiverId=alice.id, replyToId=originals[i % 5]["id"])
               for i in range(20)]
    await wait_archived(in_process_app, [m["id"] for m in originals + replies])  # the persister is done reading

    page: list[dict[str, Any]] = []

    async def read_page() -> None:
        page.extend(await history(gql, alice, last=19, p=bob.id))  # reads 20: all replies, no question

    seen = await commands_during(in_process_app.redis_url, read_page)
    assert [(m["text"], m["replyTo"]["text"]) for m in page] == [(f"answer {i}", f"question {i % 5}")
                                                                 for i in range(1, 20)]
    conversation = originals[0]["conversationId"]
    original_keys = {keys.message_key(conversation, m["id"]) for m in originals}
    reads = [c for c in seen if c[0].upper() == "JSON.MGET" and original_keys & set(c)]
    assert len(reads) == 1, reads  # one read for the page's replied-to messages, not one each
    assert original_keys <= set(reads[0])


async def test_reply_to_resolves_after_the_message_left_the_hot_window(in_process_apps: InProcessApps) -> None:
    app = await in_process_apps.start(hot_window_days=4 / 86400, hot_window_trim_seconds=0.3)
    async with app.client() as gql:
        alice, bob = await register(gql), await register(gql)
        original = await send(gql, alice, "remember this", receiverId=bob.id)
        early = await send(gql, bob, "noted", receiverId=alice.id, replyToId=original["id"])
        redis = aioredis.Redis.from_url(app.redis_url)
        try:
            deadline = time.monotonic() + 30
            while await redis.exists(keys.message_key(original["conversationId"], original["id"])):
                assert time.monotonic() < deadline, "trimmed out of Redis within 30 s"
                await asyncio.sleep(0.2)
        finally:
            await redis.aclose()
        late = await send(gql, bob, "still noted", receiverId=alice.id, replyToId=original["id"])  # from MongoDB
        expected = {"id": original["id"], "text": "remember this", "senderId": alice.id,
                    "conversationId": original["conversationId"], "replyTo": None}
        assert late["replyTo"] == expected
        assert [(m["id"], m["replyTo"]) for m in await history(gql, alice, p=bob.id)] == [
            (original["id"], None), (early["id"], expected), (late["id"], expected)]
        assert (await gql.ok(MESSAGE, {"id": early["id"]}, token=bob.token))["message"]["replyTo"] == expected


async def test_reply_to_shows_the_quoted_message_as_it_is_now_edited_then_deleted(gql: GraphQLClient) -> None:
    alice, bob = await register(gql), await register(gql)
    original = await send(gql, alice, "at 6", receiverId=bob.id)
    reply = await send(gql, bob, "ok", receiverId=alice.id, replyToId=original["id"])
    now = "query M($id: ID!) { message(id: $id) { replyTo { id text editedAt deletedAt } } }"
    await gql.ok("mutation E($id: ID!) { editMessage(id: $id, text: \"at 7\") { id } }", {"id": original["id"]},
                 token=alice.token)
    edited = (await gql.ok(now, {"id": reply["id"]}, token=bob.token))["message"]["replyTo"]
    assert edited["text"] == "at 7" and edited["editedAt"] and edited["deletedAt"] is None
    await gql.ok("mutation D($id: ID!) { deleteMessage(id: $id) { id } }", {"id": original["id"]}, token=alice.token)
    for viewer in (alice, bob):
        tombstone = (await gql.ok(now, {"id": reply["id"]}, token=viewer.token))["message"]["replyTo"]
        assert tombstone["id"] == original["id"] and tombstone["text"] == "" and tombstone["deletedAt"]
        assert [m["replyTo"] and m["replyTo"]["text"] for m in await history(gql, viewer, c=original["conversationId"])
                ] == [None, ""]
    # A deleted reply keeps nothing of what it said, its quote included.
    await gql.ok("mutation D($id: ID!) { deleteMessage(id: $id) { id } }", {"id": reply["id"]}, token=bob.token)
    assert (await gql.ok(now, {"id": reply["id"]}, token=alice.token))["message"]["replyTo"] is None
