"""Replies live and durable, against a served app: the CREATED event carries the quoted
message to every member, and the reply's link reaches the MongoDB archive."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pymongo import AsyncMongoClient

from api.app_server import AppServer
from api.dev_servers import EmbeddedServers
from tests.conftest import shared_mongodb_url
from tests.utils.graphql import GraphQLClient, register
from tests.utils.ws import connect, user_channel, wait_for_subscribers

SEND = "mutation S($input: SendMessageInput!) { sendMessage(input: $input) { id conversationId } }"
CREATE = "mutation C($input: CreateGroupInput!) { createGroup(input: $input) { id } }"
EVENTS = """subscription { messageEvents { type message { id text conversationId
  replyTo { id text senderId sender { username } } } } }"""


async def archived(url: str, message_id: str) -> dict[str, Any]:
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url)
    try:
        deadline = time.monotonic() + 30
        while (doc := await mongo.get_default_database()["messages"].find_one({"_id": message_id})) is None:
            assert time.monotonic() < deadline, "archived within 30 s"
            await asyncio.sleep(0.1)
        return doc
    finally:
        await mongo.close()


async def test_replies_reach_every_member_live_and_the_archive(
    gql: GraphQLClient, dev_servers: EmbeddedServers, app: AppServer
) -> None:
    alice, bob, carol = await register(gql), await register(gql), await register(gql)
    group = (await gql.ok(CREATE, {"input": {"title": "Crew", "memberIds": [bob.id, carol.id]}},
                          token=alice.token))["createGroup"]["id"]
    async with connect(app.ws_url, bob.token) as bob_ws, connect(app.ws_url, carol.token) as carol_ws:
        for socket, user in ((bob_ws, bob), (carol_ws, carol)):
            await socket.subscribe(EVENTS)
            await wait_for_subscribers(dev_servers.redis_url, user_channel(user.id))
        question = (await gql.ok(SEND, {"input": {"conversationId": group, "text": "who drives?"}},
                                 token=alice.token))["sendMessage"]
        for socket in (bob_ws, carol_ws):
            assert (await socket.next_payload())["data"]["messageEvents"]["message"]["replyTo"] is None
        answer = (await gql.ok(SEND, {"input": {"conversationId": group, "text": "me", "replyToId": question["id"]}},
                               token=carol.token))["sendMessage"]
        quoted = {"id": question["id"], "text": "who drives?", "senderId": alice.id,
                  "sender": {"username": alice.username}}
        for socket in (bob_ws, carol_ws):
            event = (await socket.next_payload())["data"]["messageEvents"]
            assert event == {"type": "CREATED", "message": {"id": answer["id"], "text": "me",
                                                            "conversationId": group, "replyTo": quoted}}
        direct = (await gql.ok(SEND, {"input": {"receiverId": bob.id, "text": "thanks", "replyToId": None}},
                               token=carol.token))["sendMessage"]
        reply = (await gql.ok(SEND, {"input": {"receiverId": carol.id, "text": "np", "replyToId": direct["id"]}},
                              token=bob.token))["sendMessage"]
        events = [(await bob_ws.next_payload())["data"]["messageEvents"]["message"] for _ in range(2)]
        assert [(e["text"], (e["replyTo"] or {}).get("text")) for e in events] == [("thanks", None), ("np", "thanks")]
    url = shared_mongodb_url(dev_servers)
    assert (await archived(url, answer["id"]))["reply_to_id"] == question["id"]
    assert (await archived(url, reply["id"]))["reply_to_id"] == direct["id"]
    assert "reply_to_id" not in await archived(url, question["id"])  # not a reply: nothing stored
