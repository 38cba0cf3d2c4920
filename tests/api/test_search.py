"""Search across the server's lifecycle: voice transcripts become searchable once they land
(the whisper engine of the shared app), and messages restored from MongoDB after a Redis wipe
are found again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import redis

from api.app_server import AppServer
from api.dev_servers import EmbeddedServers, start_redis
from storage import keys
from tests.conftest import mongodb_url
from tests.utils.audio import speak, upload
from tests.utils.graphql import SEND, Account, GraphQLClient, register, send
from tests.utils.search import message_hits, search, unique_word


async def wait_for_transcript(gql: GraphQLClient, viewer: Account, message_id: str) -> str:
    query = "query M($id: ID!) { message(id: $id) { text transcriptionStatus } }"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        message = (await gql.ok(query, {"id": message_id}, token=viewer.token))["message"]
        if message["transcriptionStatus"] == "DONE":
            return message["text"]
        await asyncio.sleep(0.2)
    raise AssertionError("transcript never landed")


async def test_voice_transcripts_are_searchable_by_their_conversation_only(gql: GraphQLClient, tmp_path: Path) -> None:
    alice, bob, carol, dave = await register(gql), await register(gql), await register(gql), await register(gql)
    await send(gql, carol, dave, "the outsiders talk too")
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
            while sum(client.xlen(k) for k in keys.outbox_streams()) > 0 and time.monotonic() < deadline:
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
