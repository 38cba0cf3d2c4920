"""Private full-text search: only the viewer's conversations, voice transcripts included,
stemming and prefixes, safe snippets, and no query-syntax injection."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from api.app_server import AppServer
from api.dev_servers import EmbeddedServers, start_redis
from tests.conftest import mongodb_url
from tests.utils.audio import speak, upload
from tests.utils.graphql import SEND, Account, GraphQLClient, register, send

SEARCH = """query S($q: String!, $first: Int, $partnerId: ID) {
  search(query: $q, first: $first, partnerId: $partnerId) {
    total
    hits {
      __typename
      ... on UserHit { user { id username } }
      ... on MessageHit { snippet message { id text senderId receiverId kind } }
    }
  }
}"""


def unique_word(prefix: str = "w") -> str:
    """A word no other test uses (letters only, so it tokenises as one term)."""
    return prefix + "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:10])


async def search(gql: GraphQLClient, user: Account, query: str, **variables: Any) -> dict[str, Any]:
    return (await gql.ok(SEARCH, {"q": query, **variables}, token=user.token))["search"]


def message_hits(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [h for h in result["hits"] if h["__typename"] == "MessageHit"]


async def wait_for_transcript(gql: GraphQLClient, viewer: Account, message_id: str) -> str:
    query = "query M($id: ID!) { message(id: $id) { text transcriptionStatus } }"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        message = (await gql.ok(query, {"id": message_id}, token=viewer.token))["message"]
        if message["transcriptionStatus"] == "DONE":
            return message["text"]
        await asyncio.sleep(0.2)
    raise AssertionError("transcript never landed")


async def test_only_your_own_conversations_text_and_voice(gql: GraphQLClient, tmp_path: Path) -> None:
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

    # A voice transcript is searchable once it lands.
    clip = speak("Please bring the saxophone to the rehearsal tonight.", tmp_path, "webm")
    audio = (await upload(gql.client, gql.url, bob.token, clip.read_bytes(), "v.webm",
                          "audio/webm"))["data"]["uploadAudio"]
    voice = (await gql.ok(SEND, {"input": {"receiverId": alice.id, "audioId": audio["id"]}},
                          token=bob.token))["sendMessage"]
    transcript = await wait_for_transcript(gql, alice, voice["id"])
    assert "saxophone" in transcript.lower()
    found = await search(gql, alice, "saxophone")
    assert voice["id"] in [h["message"]["id"] for h in message_hits(found)]
    for outsider in (carol, dave):
        assert (await search(gql, outsider, "saxophone")) == {"total": 0, "hits": []}


def unique_name_with(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


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


@pytest.mark.parametrize("query", HOSTILE)
async def test_hostile_queries_never_error_or_widen_the_scope(gql: GraphQLClient, query: str) -> None:
    alice, bob, carol = await register(gql), await register(gql), await register(gql)
    own = await send(gql, alice, bob, "foo bar baz x שלום مرحبا 😀 text participants")
    await send(gql, carol, bob, "foo bar baz x שלום مرحبا 😀 text participants carol")
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


async def test_messages_restored_from_mongodb_are_searchable(
    app_factory: Callable[..., AppServer], dev_servers: EmbeddedServers, tmp_path: Path
) -> None:
    own_redis = start_redis(tmp_path / "redis")
    database = "search_restore"
    server = app_factory(redis_url=own_redis.url, mongodb_url=mongodb_url(dev_servers, database)).start()
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            gql = GraphQLClient(http, server.graphql_url)
            alice, bob = await register(gql), await register(gql)
            word = unique_word("kept")
            sent = await send(gql, alice, bob, f"{word} survives a wipe")
            client = redis.Redis.from_url(own_redis.url)
            deadline = time.monotonic() + 30
            while client.xlen("cg:outbox") > 0 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)  # persisted
            server.stop()
            client.flushall()
            client.close()
            server.start()
            found = await search(gql, bob, word)
            assert [h["message"]["id"] for h in message_hits(found)] == [sent["id"]]
    finally:
        server.stop()
        own_redis.stop()
