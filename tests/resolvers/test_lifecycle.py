"""Edit, delete for everyone, react and unreact: the rules, through the public API of the
in-process app (who may, who may not, bad input, idempotency, history and search)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from resolvers.lifecycle import MAX_REACTIONS, is_single_emoji
from tests.utils.graphql import Account, GraphQLClient, register, send
from tests.utils.in_process import InProcessApps

FIELDS = "id text kind senderId editedAt deletedAt reactions { emoji count reactedByMe }"
EDIT = f"mutation E($id: ID!, $text: String!) {{ editMessage(id: $id, text: $text) {{ {FIELDS} }} }}"
DELETE = f"mutation D($id: ID!) {{ deleteMessage(id: $id) {{ {FIELDS} }} }}"
REACT = f"mutation R($id: ID!, $e: String!) {{ react(messageId: $id, emoji: $e) {{ {FIELDS} }} }}"
UNREACT = f"mutation U($id: ID!, $e: String!) {{ unreact(messageId: $id, emoji: $e) {{ {FIELDS} }} }}"
MESSAGE = f"query M($id: ID!) {{ message(id: $id) {{ {FIELDS} }} }}"
HISTORY = f"query H($p: ID!) {{ history(partnerId: $p) {{ edges {{ node {{ {FIELDS} }} }} }} }}"
SEARCH = "query S($q: String!) { search(query: $q) { hits { ... on MessageHit { message { id } } } } }"
CREATE = "mutation C($input: CreateGroupInput!) { createGroup(input: $input) { id } }"
SEND_TO = "mutation S($input: SendMessageInput!) { sendMessage(input: $input) { id } }"


async def _pair(gql: GraphQLClient) -> tuple[Account, Account, dict[str, Any]]:
    alice, bob = await register(gql), await register(gql)
    return alice, bob, await send(gql, alice, bob, "hello there")


async def _found(gql: GraphQLClient, viewer: Account, query: str) -> list[str]:
    hits = (await gql.ok(SEARCH, {"q": query}, token=viewer.token))["search"]["hits"]
    return [h["message"]["id"] for h in hits if h]


async def test_the_sender_edits_and_everyone_sees_the_new_text(gql: GraphQLClient) -> None:
    alice, bob, sent = await _pair(gql)
    edited = (await gql.ok(EDIT, {"id": sent["id"], "text": "  goodbye\u0301 zebra  "}, token=alice.token))
    edited = edited["editMessage"]
    assert edited["text"] == "goodbyé zebra" and edited["editedAt"] and edited["deletedAt"] is None  # NFC, trimmed
    for viewer in (alice, bob):
        assert (await gql.ok(MESSAGE, {"id": sent["id"]}, token=viewer.token))["message"] == edited
    history = (await gql.ok(HISTORY, {"p": alice.id}, token=bob.token))["history"]["edges"]
    assert [e["node"] for e in history] == [edited]
    # Search follows the text: the edited-away word is gone, the new one is found.
    assert await _found(gql, bob, "hello") == []
    assert await _found(gql, bob, "zebra") == [sent["id"]]
    again = (await gql.ok(EDIT, {"id": sent["id"], "text": "goodbyé zebra"}, token=alice.token))["editMessage"]
    assert again == edited  # the same text again changes nothing


@pytest.mark.parametrize("text", ["", "   ", "x" * 4001, "nul\x00"])
async def test_an_edit_follows_the_text_rules_of_sending(gql: GraphQLClient, text: str) -> None:
    alice, _, sent = await _pair(gql)
    error = await gql.error(EDIT, {"id": sent["id"], "text": text}, token=alice.token)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "text"}


async def test_who_may_not_edit_or_delete(gql: GraphQLClient) -> None:
    alice, bob, sent = await _pair(gql)
    mallory = await register(gql)
    for operation, variables in ((EDIT, {"id": sent["id"], "text": "mine now"}), (DELETE, {"id": sent["id"]})):
        error = await gql.error(operation, variables, token=bob.token)  # a member, not the sender
        assert error["extensions"] == {"code": "FORBIDDEN", "field": "id"}
        error = await gql.error(operation, variables, token=mallory.token)  # not a member
        assert error["extensions"] == {"code": "NOT_FOUND", "field": "id"}
        error = await gql.error(operation, {**variables, "id": "not-an-id"}, token=alice.token)
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "id"}
        error = await gql.error(operation, variables)
        assert error["extensions"]["code"] == "UNAUTHENTICATED"
    for operation in (REACT, UNREACT):
        error = await gql.error(operation, {"id": sent["id"], "e": "👍"}, token=mallory.token)
        assert error["extensions"] == {"code": "NOT_FOUND", "field": "messageId"}
    assert (await gql.ok(MESSAGE, {"id": sent["id"]}, token=bob.token))["message"]["text"] == "hello there"


async def test_delete_leaves_a_tombstone_for_everyone_and_twice_is_fine(gql: GraphQLClient) -> None:
    alice, bob, sent = await _pair(gql)
    await gql.ok(REACT, {"id": sent["id"], "e": "🎉"}, token=bob.token)
    await gql.ok(EDIT, {"id": sent["id"], "text": "hello walrus"}, token=alice.token)
    tombstone = (await gql.ok(DELETE, {"id": sent["id"]}, token=alice.token))["deleteMessage"]
    assert tombstone["deletedAt"] and tombstone["text"] == "" and tombstone["reactions"] == []
    assert tombstone["id"] == sent["id"] and tombstone["senderId"] == alice.id and tombstone["kind"] == "TEXT"
    assert (await gql.ok(DELETE, {"id": sent["id"]}, token=alice.token))["deleteMessage"] == tombstone
    for viewer in (alice, bob):
        assert (await gql.ok(MESSAGE, {"id": sent["id"]}, token=viewer.token))["message"] == tombstone
    history = (await gql.ok(HISTORY, {"p": bob.id}, token=alice.token))["history"]["edges"]
    assert [e["node"] for e in history] == [tombstone]
    assert await _found(gql, bob, "walrus") == []
    error = await gql.error(EDIT, {"id": sent["id"], "text": "back"}, token=alice.token)
    assert error["extensions"] == {"code": "CONFLICT", "field": "id"}
    error = await gql.error(REACT, {"id": sent["id"], "e": "👍"}, token=bob.token)
    assert error["extensions"] == {"code": "CONFLICT", "field": "messageId"}


async def test_reactions_count_per_user_and_emoji_and_know_who_is_asking(gql: GraphQLClient) -> None:
    alice, bob, sent = await _pair(gql)
    carol = await register(gql)
    group = (await gql.ok(CREATE, {"input": {"title": "g", "memberIds": [bob.id, carol.id]}},
                          token=alice.token))["createGroup"]["id"]
    in_group = (await gql.ok(SEND_TO, {"input": {"conversationId": group, "text": "vote"}},
                             token=alice.token))["sendMessage"]
    for user, emoji in ((bob, "👍"), (carol, "👍"), (bob, "👍"), (alice, "❤️"), (carol, "👍🏽")):
        await gql.ok(REACT, {"id": in_group["id"], "e": emoji}, token=user.token)
    seen = {}
    for user in (alice, bob, carol):
        seen[user.id] = (await gql.ok(MESSAGE, {"id": in_group["id"]}, token=user.token))["message"]["reactions"]
    assert seen[bob.id] == [{"emoji": "👍", "count": 2, "reactedByMe": True},
                            {"emoji": "❤️", "count": 1, "reactedByMe": False},
                            {"emoji": "👍🏽", "count": 1, "reactedByMe": False}]
    assert [r["reactedByMe"] for r in seen[alice.id]] == [False, True, False]
    left = (await gql.ok(UNREACT, {"id": in_group["id"], "e": "👍"}, token=bob.token))["unreact"]["reactions"]
    assert left[0] == {"emoji": "👍", "count": 1, "reactedByMe": False}
    again = (await gql.ok(UNREACT, {"id": in_group["id"], "e": "👍"}, token=bob.token))["unreact"]["reactions"]
    assert again == left  # taking back what is not there changes nothing
    gone = (await gql.ok(UNREACT, {"id": in_group["id"], "e": "❤️"}, token=alice.token))["unreact"]["reactions"]
    assert [r["emoji"] for r in gone] == ["👍", "👍🏽"]  # an emoji nobody uses any more is dropped
    # Anyone in a DIRECT conversation may react too, to their own message as well.
    mine = (await gql.ok(REACT, {"id": sent["id"], "e": "😂"}, token=alice.token))["react"]["reactions"]
    assert mine == [{"emoji": "😂", "count": 1, "reactedByMe": True}]


async def test_reactions_at_once_all_count(gql: GraphQLClient) -> None:
    alice = await register(gql)
    others = [await register(gql) for _ in range(6)]
    group = (await gql.ok(CREATE, {"input": {"title": "g", "memberIds": [o.id for o in others]}},
                          token=alice.token))["createGroup"]["id"]
    sent = (await gql.ok(SEND_TO, {"input": {"conversationId": group, "text": "race"}},
                         token=alice.token))["sendMessage"]
    await asyncio.gather(*[gql.ok(REACT, {"id": sent["id"], "e": "🔥" if i % 2 else "👀"}, token=o.token)
                           for i, o in enumerate(others)])
    reactions = (await gql.ok(MESSAGE, {"id": sent["id"]}, token=alice.token))["message"]["reactions"]
    assert sorted((r["emoji"], r["count"]) for r in reactions) == [("👀", 3), ("🔥", 3)]


async def test_at_most_twenty_distinct_emoji(gql: GraphQLClient) -> None:
    alice, bob, sent = await _pair(gql)
    emoji = [chr(0x1F600 + i) for i in range(MAX_REACTIONS + 1)]
    for e in emoji[:MAX_REACTIONS]:
        await gql.ok(REACT, {"id": sent["id"], "e": e}, token=bob.token)
    error = await gql.error(REACT, {"id": sent["id"], "e": emoji[-1]}, token=alice.token)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "emoji"}
    await gql.ok(REACT, {"id": sent["id"], "e": emoji[0]}, token=alice.token)  # one already there: fine


@pytest.mark.parametrize("emoji", ["", " ", "a", "ab", ":)", "👍👍", "👍 ", "🇺", "❤️x", "\u200d", "🏽", "1"])
async def test_a_reaction_is_exactly_one_emoji(gql: GraphQLClient, emoji: str) -> None:
    _, bob, sent = await _pair(gql)
    if emoji == "👍 ":  # surrounding spaces are trimmed
        assert (await gql.ok(REACT, {"id": sent["id"], "e": emoji}, token=bob.token))["react"]["reactions"][0][
            "emoji"] == "👍"
        return
    error = await gql.error(REACT, {"id": sent["id"], "e": emoji}, token=bob.token)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "emoji"}


@pytest.mark.parametrize("emoji", ["👍", "❤️", "❤", "👍🏽", "🇫🇷", "1️⃣", "#⃣", "👩‍👩‍👧‍👦", "🏳️‍🌈", "👩🏽‍💻",
                                   "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f", "©️", "⌛", "🫠"])
def test_single_emoji_graphemes(emoji: str) -> None:
    assert is_single_emoji(emoji)


async def test_the_edit_window(in_process_apps: InProcessApps) -> None:
    app = await in_process_apps.start(edit_window_seconds=0.001)
    async with app.client() as gql:
        alice, _, sent = await _pair(gql)
        await asyncio.sleep(0.01)
        error = await gql.error(EDIT, {"id": sent["id"], "text": "too late"}, token=alice.token)
        assert error["extensions"] == {"code": "FORBIDDEN", "field": "id"}
        # Deleting and reacting know no window.
        await gql.ok(REACT, {"id": sent["id"], "e": "👍"}, token=alice.token)
        assert (await gql.ok(DELETE, {"id": sent["id"]}, token=alice.token))["deleteMessage"]["deletedAt"]
