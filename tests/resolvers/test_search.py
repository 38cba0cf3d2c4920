"""Private full-text search: only the viewer's conversations, stemming and prefixes, safe
snippets, and no query-syntax injection (in-process; voice transcripts and a Redis wipe are in
tests/api/test_search.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.utils.graphql import Account, GraphQLClient, register, send
from tests.utils.in_process import InProcessApp
from tests.utils.search import SEARCH, message_hits, search, unique_name_with, unique_word


async def test_only_your_own_conversations(gql: GraphQLClient) -> None:
    alice = await register(gql, unique_name_with("alice"))
    bob, carol, dave = await register(gql), await register(gql), await register(gql)
    ours, theirs = unique_word("ours"), unique_word("theirs")
    mine = await send(gql, alice, bob, f"the {ours} plan for tomorrow")
    await send(gql, carol, dave, f"the {theirs} secret, and also {ours} copied")
    await send(gql, dave, carol, f"{theirs} again")

    result = await search(gql, alice, ours)
    assert result["total"] == 1
    assert [h["message"]["id"] for h in message_hits(result)] == [mine["id"]]
    assert f"<b>{ours}</b>" in message_hits(result)[0]["snippet"]
    nothing = await search(gql, alice, theirs)
    assert nothing == {"total": 0, "hits": []}
    # carol sees her own copy of the word, and only that.
    carols = await search(gql, carol, ours)
    assert carols["total"] == 1 and message_hits(carols)[0]["message"]["senderId"] == carol.id


async def test_stemming_prefixes_and_users(gql: GraphQLClient) -> None:
    alice = await register(gql, unique_name_with("alice"))
    bob = await register(gql)
    tag = unique_word("proj")
    planned = await send(gql, alice, bob, f"{tag}: the meetings are on Tuesday")
    found = await search(gql, alice, f"{tag} meeting")
    assert [h["message"]["id"] for h in message_hits(found)] == [planned["id"]]
    assert "<b>meetings</b>" in message_hits(found)[0]["snippet"]
    prefixed = await search(gql, alice, f"{tag} tues")  # prefix on the last word
    assert [h["message"]["id"] for h in message_hits(prefixed)] == [planned["id"]]
    users = await search(gql, bob, alice.username[:-3])
    assert [h["user"]["id"] for h in users["hits"] if h["__typename"] == "UserHit"] == [alice.id]
    within = await search(gql, alice, tag, partnerId=bob.id)
    assert within["total"] == 1 and all(h["__typename"] == "MessageHit" for h in within["hits"])
    elsewhere = await search(gql, alice, tag, partnerId=(await register(gql)).id)
    assert elsewhere == {"total": 0, "hits": []}


async def test_relevance_then_newest_first(gql: GraphQLClient) -> None:
    alice, bob = await register(gql), await register(gql)
    word = unique_word("rank")
    strong = await send(gql, alice, bob, f"{word} {word} {word}")
    older = await send(gql, alice, bob, f"{word} mentioned once among many other words in a long message")
    newer = await send(gql, bob, alice, f"{word} mentioned once among many other words in a long message")
    ids = [h["message"]["id"] for h in message_hits(await search(gql, alice, word))]
    assert ids == [strong["id"], newer["id"], older["id"]]


async def test_snippets_are_html_escaped(gql: GraphQLClient) -> None:
    alice, bob = await register(gql), await register(gql)
    word = unique_word("xss")
    await send(gql, alice, bob, f'<script>alert("{word}")</script> & <img src=x onerror=1>')
    snippet = message_hits(await search(gql, alice, word))[0]["snippet"]
    assert "<script>" not in snippet and "<img" not in snippet
    assert "&lt;script&gt;" in snippet and f"<b>{word}</b>" in snippet
    assert snippet.replace("<b>", "").replace("</b>", "").count("<") == 0


HOSTILE = [
    "*", "@text:foo", "-x", "foo|bar", "%%typo%%", "\\", '"', "'", "{", "}", "[", "]", "(", ")", ":", ";", "/",
    "@", "|", "~", "%", "-", "@participants:{*}", "*) | (@text_fts:*", "{alice}", "ø∂ƒ©", "😀😀", "שלום עולם",
    "مرحبا بالعالم", "a" * 256, "x" * 255 + "*", "\u202eevil", "0", "__proto__", "$", "${x}", "$.text",
    "@participants:{%s}",
]


@pytest.fixture(scope="module")
async def hostile_setting(in_process_app: InProcessApp) -> tuple[Account, Account, Account, dict[str, Any]]:
    """alice wrote one message to bob; carol wrote bob the same words (registered once: hashing is slow)."""
    async with in_process_app.client() as gql:
        alice, bob, carol = await register(gql), await register(gql), await register(gql)
        own = await send(gql, alice, bob, "foo bar baz x שלום مرحبا 😀 text participants")
        await send(gql, carol, bob, "foo bar baz x שלום مرحبا 😀 text participants carol")
    return alice, bob, carol, own


@pytest.mark.parametrize("query", HOSTILE)
async def test_hostile_queries_never_error_or_widen_the_scope(
    gql: GraphQLClient, hostile_setting: tuple[Account, Account, Account, dict[str, Any]], query: str
) -> None:
    alice, bob, carol, own = hostile_setting
    query = query.replace("%s", carol.id)
    everywhere = message_hits(await search(gql, alice, query))
    assert all(h["message"]["id"] == own["id"] for h in everywhere)
    # Within one conversation there are no user hits, so `total` counts messages only.
    with_bob = await search(gql, alice, query, partnerId=bob.id)
    assert with_bob["total"] <= 1 and all(h["message"]["id"] == own["id"] for h in message_hits(with_bob))
    with_carol = await search(gql, alice, query, partnerId=carol.id)
    assert with_carol == {"total": 0, "hits": []}


@pytest.mark.parametrize(
    ("query", "first"), [("", 20), ("   ", 20), ("x" * 257, 20), ("y" * 10_000, 20), ("ok", 0), ("ok", 51)]
)
async def test_bad_search_arguments(gql: GraphQLClient, query: str, first: int) -> None:
    alice = await register(gql)
    error = await gql.error(SEARCH, {"q": query, "first": first}, token=alice.token)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == ("first" if query == "ok" else "query")


async def test_search_needs_a_token(gql: GraphQLClient) -> None:
    assert (await gql.error(SEARCH, {"q": "hello"}))["extensions"]["code"] == "UNAUTHENTICATED"


PAGED = """query P($q: String!, $first: Int, $after: String, $c: ID) {
  search(query: $q, first: $first, after: $after, conversationId: $c) {
    total pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    hits { __typename ... on UserHit { user { id } } ... on MessageHit { message { id conversationId } } }
  }
}"""
GROUP = "mutation C($input: CreateGroupInput!) { createGroup(input: $input) { id } }"
SEND_TO = "mutation S($input: SendMessageInput!) { sendMessage(input: $input) { id } }"
LEAVE = "mutation L($c: ID!, $u: ID!) { removeMember(conversationId: $c, userId: $u) { id } }"


async def test_after_pages_through_users_then_messages_without_gaps(gql: GraphQLClient) -> None:
    word = unique_word("page")
    people = [await register(gql, f"{word}{i}") for i in range(3)]  # usernames that start with the word
    alice = people[0]
    sent = {(await send(gql, alice, people[1], f"{word} number {i}"))["id"] for i in range(8)}
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        result = (await gql.ok(PAGED, {"q": word, "first": 4, "after": after}, token=alice.token))["search"]
        pages += 1
        assert result["total"] == 11 and result["pageInfo"]["hasPreviousPage"] == (after is not None)
        seen += [h["user"]["id"] if h["__typename"] == "UserHit" else h["message"]["id"] for h in result["hits"]]
        if not result["pageInfo"]["hasNextPage"]:
            break
        after = result["pageInfo"]["endCursor"]
    assert pages == 3 and len(seen) == len(set(seen)) == 11
    assert set(seen[:3]) == {p.id for p in people}  # users first, then messages
    assert set(seen[3:]) == sent
    bad = await gql.error(PAGED, {"q": word, "after": "bm90LWEtY3Vyc29y"}, token=alice.token)
    assert bad["extensions"] == {"code": "BAD_USER_INPUT", "field": "after"}


async def test_group_search_follows_membership(gql: GraphQLClient) -> None:
    alice, bob, carol = await register(gql), await register(gql), await register(gql)
    word = unique_word("grp")
    group = (await gql.ok(GROUP, {"input": {"title": "g", "memberIds": [bob.id, carol.id]}},
                          token=alice.token))["createGroup"]["id"]
    message = (await gql.ok(SEND_TO, {"input": {"conversationId": group, "text": f"{word} at noon"}},
                            token=alice.token))["sendMessage"]["id"]
    for member in (alice, bob, carol):
        scoped = (await gql.ok(PAGED, {"q": word, "c": group}, token=member.token))["search"]
        assert [h["message"]["id"] for h in scoped["hits"]] == [message] and scoped["total"] == 1
    await gql.ok(LEAVE, {"c": group, "u": carol.id}, token=carol.token)
    assert await search(gql, carol, word) == {"total": 0, "hits": []}  # left: no longer found, not counted
    error = await gql.error(PAGED, {"q": word, "c": group}, token=carol.token)
    assert error["extensions"] == {"code": "NOT_FOUND", "field": "conversationId"}
    assert (await search(gql, bob, word))["total"] == 1
