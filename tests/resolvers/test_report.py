"""Reporting messages over HTTP: who may report what, what is kept for the operators, limits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from tests.utils.graphql import Account, GraphQLClient, register
from tests.utils.in_process import InProcessApp, InProcessApps

REPORT = "mutation R($m: ID!, $r: String!) { reportMessage(messageId: $m, reason: $r) }"
SEND = "mutation S($input: SendMessageInput!) { sendMessage(input: $input) { id conversationId sentAt } }"
CREATE = "mutation C($input: CreateGroupInput!) { createGroup(input: $input) { id } }"
LEAVE = "mutation L($c: ID!, $u: ID!) { removeMember(conversationId: $c, userId: $u) { id } }"
UNKNOWN_ID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"


@pytest.fixture
async def reports(in_process_app: InProcessApp) -> AsyncIterator[Any]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(in_process_app.mongodb_url, tz_aware=True)
    yield client[in_process_app.database]["reports"]
    await client.close()


async def send(gql: GraphQLClient, sender: Account, text: str, **target: str) -> dict[str, Any]:
    return (await gql.ok(SEND, {"input": {**target, "text": text}}, token=sender.token))["sendMessage"]


async def test_a_member_reports_a_message_with_its_content_kept(gql: GraphQLClient, reports: Any) -> None:
    alice, bob = await register(gql), await register(gql)
    message = await send(gql, bob, "  buy cheap watches  ", receiverId=alice.id)
    reason = "  spam, again \u00e9  "
    assert await gql.ok(REPORT, {"m": message["id"], "r": reason}, token=alice.token) == {"reportMessage": True}
    stored = await reports.find_one({"message_id": message["id"]}, projection={"_id": 0})
    reported_at = stored.pop("reported_at")
    assert stored.pop("sent_at").isoformat().replace("+00:00", "Z")[:23] == message["sentAt"][:23]
    assert stored == {"message_id": message["id"], "conversation_id": message["conversationId"],
                      "sender_id": bob.id, "reporter_id": alice.id, "reason": "spam, again \u00e9",
                      "kind": "TEXT", "text": "buy cheap watches", "transcript": None}
    # Reporting it again replaces the reason: one report per reporter and message.
    await gql.ok(REPORT, {"m": message["id"], "r": "scam"}, token=alice.token)
    again = await reports.find({"message_id": message["id"]}).to_list()
    assert [r["reason"] for r in again] == ["scam"] and again[0]["reported_at"] >= reported_at
    await gql.ok(REPORT, {"m": message["id"], "r": "my own, by mistake"}, token=bob.token)  # any member may
    assert await reports.count_documents({"message_id": message["id"]}) == 2


async def test_only_current_members_report_and_others_learn_nothing(gql: GraphQLClient, reports: Any) -> None:
    alice, bob, mallory = await register(gql), await register(gql), await register(gql)
    direct = await send(gql, alice, "private", receiverId=bob.id)
    group = (await gql.ok(CREATE, {"input": {"title": "g", "memberIds": [bob.id]}}, token=alice.token))["createGroup"]
    in_group = await send(gql, alice, "group talk", conversationId=group["id"])
    await gql.ok(LEAVE, {"c": group["id"], "u": bob.id}, token=bob.token)  # bob left: no longer a member
    for reporter, message_id in ((mallory, direct["id"]), (bob, in_group["id"]), (alice, UNKNOWN_ID)):
        error = await gql.error(REPORT, {"m": message_id, "r": "bad"}, token=reporter.token)
        assert error["extensions"] == {"code": "NOT_FOUND", "field": "messageId"}, error
    assert await reports.count_documents({"reporter_id": {"$in": [alice.id, bob.id, mallory.id]}}) == 0


@pytest.mark.parametrize(("message_id", "reason", "field"), [
    ("not-an-id", "spam", "messageId"),
    (None, "", "reason"),
    (None, "   \n\t ", "reason"),
    (None, "x" * 1001, "reason"),
    (None, "nul\x00", "reason"),
])
async def test_bad_reports(gql: GraphQLClient, reports: Any, message_id: str | None, reason: str, field: str) -> None:
    alice, bob = await register(gql), await register(gql)
    message = await send(gql, bob, "hi", receiverId=alice.id)
    error = await gql.error(REPORT, {"m": message_id or message["id"], "r": reason}, token=alice.token)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": field}, error
    assert await reports.count_documents({"reporter_id": alice.id}) == 0


async def test_a_reason_of_1000_characters_after_trimming_is_fine(gql: GraphQLClient) -> None:
    alice, bob = await register(gql), await register(gql)
    message = await send(gql, bob, "hi", receiverId=alice.id)
    assert await gql.ok(REPORT, {"m": message["id"], "r": f"  {'y' * 1000}  "}, token=alice.token)
    error = await gql.error(REPORT, {"m": message["id"], "r": "spam"})
    assert error["extensions"]["code"] == "UNAUTHENTICATED"


async def test_reports_are_rate_limited(in_process_apps: InProcessApps) -> None:
    app = await in_process_apps.start(rate_limits="on", rate_limit_report_message="2/600")
    async with app.client() as gql:
        alice, bob = await register(gql), await register(gql)
        message = await send(gql, bob, "hi", receiverId=alice.id)
        for _ in range(2):
            await gql.ok(REPORT, {"m": message["id"], "r": "spam"}, token=alice.token)
        limited = await gql.error(REPORT, {"m": message["id"], "r": "spam"}, token=alice.token)
        assert limited["extensions"]["code"] == "RATE_LIMITED" and limited["extensions"]["retryAfter"] > 0
        await gql.ok(REPORT, {"m": message["id"], "r": "spam"}, token=bob.token)  # counted per reporter
