"""Blocking over HTTP: who may not write to whom, groups, presence fields, and every bad input.
(Presence events and online lists need WebSockets: tests/api/test_safety.py.)"""

from __future__ import annotations

from typing import Any

from storage.connections import close_redis, open_redis
from tests.utils.graphql import Account, GraphQLClient, register
from tests.utils.in_process import InProcessApp, InProcessApps

BLOCK = "mutation B($u: ID!) { blockUser(userId: $u) }"
UNBLOCK = "mutation U($u: ID!) { unblockUser(userId: $u) }"
BLOCKED = "query { blockedUsers { id username online lastSeenAt } }"
SEND = "mutation S($input: SendMessageInput!) { sendMessage(input: $input) { id conversationId text } }"
HISTORY = "query H($p: ID!) { history(partnerId: $p) { edges { node { text } } } }"
CREATE = "mutation C($input: CreateGroupInput!) { createGroup(input: $input) { id memberCount } }"
ADD = "mutation A($c: ID!, $u: [ID!]!) { addMembers(conversationId: $c, userIds: $u) { memberCount } }"
UNKNOWN_ID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"


async def send(gql: GraphQLClient, sender: Account, text: str, *, to: Account | None = None,
               conversation_id: str | None = None) -> dict[str, Any]:
    target = {"receiverId": to.id} if to is not None else {"conversationId": conversation_id}
    return await gql.raw(SEND, {"input": {**target, "text": text}}, token=sender.token)


def error_of(body: dict[str, Any]) -> dict[str, Any]:
    assert body.get("errors") and len(body["errors"]) == 1, body
    return body["errors"][0]


async def test_a_blocked_user_cannot_write_directly_either_way_until_unblocked(gql: GraphQLClient) -> None:
    alice, bob = await register(gql), await register(gql)
    first = (await send(gql, bob, "hi", to=alice))["data"]["sendMessage"]
    assert (await gql.ok(BLOCK, {"u": bob.id}, token=alice.token)) == {"blockUser": True}

    refused = error_of(await send(gql, bob, "hello?", to=alice))
    assert refused["extensions"] == {"code": "FORBIDDEN", "field": "receiverId"}
    refused = error_of(await send(gql, bob, "hello?", conversation_id=first["conversationId"]))
    assert refused["extensions"] == {"code": "FORBIDDEN", "field": "conversationId"}
    mine = error_of(await send(gql, alice, "go away", to=bob))  # the blocker unblocks to write
    assert mine["extensions"] == {"code": "FORBIDDEN", "field": "receiverId"} and "unblock" in mine["message"]
    for reader, partner in ((alice, bob), (bob, alice)):  # what was said stays readable
        history = (await gql.ok(HISTORY, {"p": partner.id}, token=reader.token))["history"]["edges"]
        assert [e["node"]["text"] for e in history] == ["hi"]

    assert (await gql.ok(UNBLOCK, {"u": bob.id}, token=alice.token)) == {"unblockUser": True}
    assert (await send(gql, bob, "sorry", to=alice))["data"]["sendMessage"]["text"] == "sorry"
    assert (await send(gql, alice, "ok", to=bob))["data"]["sendMessage"]["text"] == "ok"


async def test_a_block_before_any_conversation_stops_the_first_message(gql: GraphQLClient) -> None:
    carol, dave = await register(gql), await register(gql)
    await gql.ok(BLOCK, {"u": carol.id}, token=dave.token)
    refused = error_of(await send(gql, carol, "first!", to=dave))
    assert refused["extensions"] == {"code": "FORBIDDEN", "field": "receiverId"}
    history = (await gql.ok(HISTORY, {"p": dave.id}, token=carol.token))["history"]["edges"]
    assert history == []
    assert (await send(gql, carol, "note to self", to=carol))["data"]["sendMessage"]["text"] == "note to self"


async def test_a_blocked_user_cannot_add_the_blocker_to_a_group_but_shared_groups_keep_working(
    gql: GraphQLClient,
) -> None:
    alice, bob, carol = await register(gql), await register(gql), await register(gql)
    shared = (await gql.ok(CREATE, {"input": {"title": "club", "memberIds": [alice.id, bob.id]}},
                           token=carol.token))["createGroup"]
    await gql.ok(BLOCK, {"u": bob.id}, token=alice.token)

    refused = await gql.error(CREATE, {"input": {"title": "mine", "memberIds": [carol.id, alice.id]}},
                              token=bob.token)
    assert refused["extensions"] == {"code": "FORBIDDEN", "field": "memberIds", "ids": [alice.id]}
    own = (await gql.ok(CREATE, {"input": {"title": "mine", "memberIds": [carol.id]}}, token=bob.token))["createGroup"]
    refused = await gql.error(ADD, {"c": own["id"], "u": [carol.id, alice.id]}, token=bob.token)
    assert refused["extensions"] == {"code": "FORBIDDEN", "field": "userIds", "ids": [alice.id]}

    for member in (alice, bob):  # the group they share still works for both
        sent = await send(gql, member, f"from {member.username}", conversation_id=shared["id"])
        assert sent["data"]["sendMessage"]["conversationId"] == shared["id"], sent

    await gql.ok(UNBLOCK, {"u": bob.id}, token=alice.token)
    assert (await gql.ok(ADD, {"c": own["id"], "u": [alice.id]}, token=bob.token))["addMembers"]["memberCount"] == 3


async def test_blocking_is_idempotent_and_listed_newest_first(gql: GraphQLClient) -> None:
    alice, bob, carol = await register(gql), await register(gql), await register(gql)
    for user in (bob, carol, bob):
        assert (await gql.ok(BLOCK, {"u": user.id}, token=alice.token)) == {"blockUser": True}
    listed = (await gql.ok(BLOCKED, token=alice.token))["blockedUsers"]
    assert listed == [{"id": u.id, "username": u.username, "online": False, "lastSeenAt": None} for u in (carol, bob)]
    assert (await gql.ok(BLOCKED, token=bob.token))["blockedUsers"] == []
    for _ in range(2):
        assert (await gql.ok(UNBLOCK, {"u": carol.id}, token=alice.token)) == {"unblockUser": True}
    assert [u["id"] for u in (await gql.ok(BLOCKED, token=alice.token))["blockedUsers"]] == [bob.id]


async def test_bad_block_requests(gql: GraphQLClient) -> None:
    alice = await register(gql)
    for mutation in (BLOCK, UNBLOCK):
        own = await gql.error(mutation, {"u": alice.id}, token=alice.token)
        assert own["extensions"] == {"code": "BAD_USER_INPUT", "field": "userId"}, own
        unknown = await gql.error(mutation, {"u": UNKNOWN_ID}, token=alice.token)
        assert unknown["extensions"] == {"code": "NOT_FOUND", "field": "userId"}, unknown
        malformed = await gql.error(mutation, {"u": "nope"}, token=alice.token)
        assert malformed["extensions"] == {"code": "BAD_USER_INPUT", "field": "userId"}, malformed
        anonymous = await gql.error(mutation, {"u": alice.id})
        assert anonymous["extensions"]["code"] == "UNAUTHENTICATED"
    assert (await gql.error(BLOCKED))["extensions"]["code"] == "UNAUTHENTICATED"


async def test_one_blocks_at_most_max_blocked_users(in_process_apps: InProcessApps) -> None:
    app = await in_process_apps.start(max_blocked_users=2)
    async with app.client() as gql:
        alice, *others = [await register(gql) for _ in range(4)]
        for other in others[:2]:
            await gql.ok(BLOCK, {"u": other.id}, token=alice.token)
        over = await gql.error(BLOCK, {"u": others[2].id}, token=alice.token)
        assert over["extensions"] == {"code": "BAD_USER_INPUT", "field": "userId"}
        assert "MAX_BLOCKED_USERS" in over["message"]
        assert (await gql.ok(BLOCK, {"u": others[0].id}, token=alice.token)) == {"blockUser": True}  # already blocked
        await gql.ok(UNBLOCK, {"u": others[0].id}, token=alice.token)
        assert (await gql.ok(BLOCK, {"u": others[2].id}, token=alice.token)) == {"blockUser": True}


async def test_a_warm_direct_send_asks_redis_nothing_about_blocks(in_process_app: InProcessApp) -> None:
    """The send path's block check is answered by the process's cache once both users are known:
    no Redis command about blocks per send (it costs no round-trip)."""
    redis = await open_redis(in_process_app.redis_url)
    try:
        async with in_process_app.client() as gql:
            alice, bob = await register(gql), await register(gql)
            await send(gql, bob, "first", to=alice)  # reads both users' blocks once
            await redis.config_resetstat()
            for text in ("second", "third"):
                assert not (await send(gql, bob, text, to=alice)).get("errors")
                assert not (await send(gql, alice, text, to=bob)).get("errors")
            stats = await redis.info("commandstats")
    finally:
        await close_redis(redis)
    assert stats["cmdstat_evalsha"]["calls"] >= 4  # the sends ran their scripts
    assert "cmdstat_smembers" not in stats, stats  # a read of blocks is SMEMBERS (with a GET) per user
