"""Search over all history: messages that left the hot window (a hot window of two seconds,
trimmed by the app itself, or trimmed by hand at a chosen point) stay searchable by their
conversation's members only, page together with hot ones, survive a Redis wipe, and a hit on a
voice message carries the transcript words it matched with their timings (in-process, with a
scripted Deepgram)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from storage import keys
from storage.archive import ArchiveStore
from storage.cold import MessageDoc
from storage.connections import open_mongo, open_redis
from storage.hot_window import HotWindow
from storage.ids import direct_conversation_id
from tests.utils.audio import speak, upload
from tests.utils.fake_deepgram import FakeDeepgram, Outcome, listen_response
from tests.utils.graphql import SEND, Account, GraphQLClient, register, send
from tests.utils.in_process import InProcessApp, InProcessApps
from tests.utils.search import message_hits, search, unique_word

WINDOW_SECONDS = 2.0
SPOKEN = "Please bring the saxophone to the rehearsal tonight, the saxophone case too."
PAGED = """query S($q: String!, $first: Int, $after: String) {
  search(query: $q, first: $first, after: $after) {
    total
    hits { ... on MessageHit { message { id } } }
    pageInfo { hasNextPage endCursor }
  }
}"""
WORDS = """query S($q: String!) {
  search(query: $q) { total hits { ... on MessageHit { message { id transcript { words { word start end } } }
                                                        matches { word start end confidence } } } }
}"""
TRANSCRIPT = "query M($id: ID!) { message(id: $id) { transcriptionStatus transcript { words { word start end } } } }"


@pytest.fixture(scope="module")
async def deepgram() -> AsyncIterator[FakeDeepgram]:
    with FakeDeepgram() as server:
        yield server


@pytest.fixture(scope="module")
async def ageing_app(in_process_apps: InProcessApps, deepgram: FakeDeepgram) -> InProcessApp:
    """Messages leave its hot window two seconds after they were sent; it trims every 0.2 s."""
    return await in_process_apps.start(
        hot_window_days=WINDOW_SECONDS / 86400, hot_window_trim_seconds=0.2, stt_engine="deepgram",
        deepgram_url=deepgram.url, deepgram_api_key="dg-test-key", transcription_retry_seconds=0.2,
    )


@pytest.fixture(scope="module")
async def still_app(in_process_apps: InProcessApps) -> InProcessApp:
    """A 90-day window that the tests trim by hand at a point of their choosing."""
    return await in_process_apps.start()


async def wait_archived(app: InProcessApp, a: Account, b: Account, message_id: str) -> None:
    """Until the message's document left Redis and its slim search entry took its place."""
    conversation = direct_conversation_id(a.id, b.id)
    redis = await open_redis(app.redis_url)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if (await redis.exists(keys.archived_message_entry(conversation, message_id))
                    and not await redis.exists(keys.message_key(conversation, message_id))):
                return
            await asyncio.sleep(0.1)
    finally:
        await redis.aclose()
    raise AssertionError("the message never left the hot window")


def ids(result: dict[str, Any]) -> list[str]:
    return [h["message"]["id"] for h in message_hits(result)]


async def test_an_archived_message_is_found_by_its_members_and_nobody_else(ageing_app: InProcessApp) -> None:
    async with ageing_app.client() as gql:
        alice, bob, carol = await register(gql), await register(gql), await register(gql)
        word = unique_word("old")
        old = await send(gql, alice, bob, f"the {word} minutes of the meetings")
        await send(gql, carol, alice, "carol talks to alice about something else")
        await wait_archived(ageing_app, alice, bob, old["id"])
        for member in (alice, bob):
            found = await search(gql, member, word)
            assert found["total"] == 1 and ids(found) == [old["id"]]
            assert f"<b>{word}</b>" in message_hits(found)[0]["snippet"]
            assert message_hits(found)[0]["message"]["text"] == old["text"]
        assert ids(await search(gql, alice, f"{word} meeting")) == [old["id"]]  # stemmed, like hot ones
        assert ids(await search(gql, alice, f"meeting {word[:-3]}")) == [old["id"]]  # the last word a prefix
        assert await search(gql, carol, word) == {"total": 0, "hits": []}
        assert await search(gql, carol, f"{word} meetings") == {"total": 0, "hits": []}


async def test_paging_over_hot_and_archived_messages_skips_and_repeats_nothing(still_app: InProcessApp) -> None:
    async with still_app.client() as gql:
        alice, bob, carol = await register(gql), await register(gql), await register(gql)
        word = unique_word("page")
        older = [await send(gql, alice if i % 2 else bob, alice if i % 2 == 0 else bob, f"{word} number {i}")
                 for i in range(5)]
        await asyncio.sleep(0.01)
        cutoff_ms = int(time.time() * 1000)
        newer = [await send(gql, alice, bob, f"{word} later {i} {word}") for i in range(4)]
        await trim_before(still_app, cutoff_ms, expected=len(older))
        await wait_archived(still_app, alice, bob, older[-1]["id"])

        seen: list[str] = []
        after = None
        while True:
            page = (await gql.ok(PAGED, {"q": word, "first": 2, "after": after}, token=alice.token))["search"]
            assert page["total"] == 9
            seen += [h["message"]["id"] for h in page["hits"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        assert len(seen) == len(set(seen)) == 9
        assert set(seen) == {m["id"] for m in older + newer}
        assert set(seen[:4]) == {m["id"] for m in newer}  # two matches rank above one
        outsider = (await gql.ok(PAGED, {"q": word, "first": 2}, token=carol.token))["search"]
        assert outsider == {"total": 0, "hits": [], "pageInfo": {"hasNextPage": False, "endCursor": None}}


async def trim_before(app: InProcessApp, cutoff_ms: int, *, expected: int) -> None:
    """Trim the app's hot window at `cutoff_ms` (as its upkeep would with that window start)
    until `expected` messages left it (each once MongoDB has it)."""
    redis: Redis = await open_redis(app.redis_url)
    mongo = await open_mongo(app.mongodb_url, app.database)
    try:
        window = HotWindow(redis, ArchiveStore(mongo[app.database][MessageDoc.Settings.name]),
                           window_seconds=86400, interval_seconds=3600)
        trimmed, deadline = 0, time.monotonic() + 30
        while trimmed < expected and time.monotonic() < deadline:
            trimmed += await window.trim(window_start_ms=cutoff_ms)
            await asyncio.sleep(0.1)
        assert trimmed == expected
    finally:
        await redis.aclose()
        await mongo.close()


async def send_voice(gql: GraphQLClient, sender: Account, receiver: Account, folder: Path) -> dict[str, Any]:
    clip = speak(SPOKEN, folder, "webm")
    audio = (await upload(gql.client, gql.url, sender.token, clip.read_bytes(), "v.webm", "audio/webm"))
    return (await gql.ok(SEND, {"input": {"receiverId": receiver.id, "audioId": audio["data"]["uploadAudio"]["id"]}},
                         token=sender.token))["sendMessage"]


async def test_a_hit_on_spoken_words_carries_their_timings(
    ageing_app: InProcessApp, deepgram: FakeDeepgram, tmp_path: Path
) -> None:
    deepgram.answer(Outcome(200, listen_response([(SPOKEN, 0.93)])))
    async with ageing_app.client() as gql:
        alice, bob = await register(gql), await register(gql)
        typed = await send(gql, alice, bob, "a saxophone typed, not spoken")
        voice = await send_voice(gql, alice, bob, tmp_path)
        deadline = time.monotonic() + 30
        while (await gql.ok(TRANSCRIPT, {"id": voice["id"]}, token=bob.token))["message"]["transcriptionStatus"] \
                != "DONE":
            assert time.monotonic() < deadline, "the transcript never landed"
            await asyncio.sleep(0.1)
        await wait_archived(ageing_app, alice, bob, voice["id"])
        await wait_archived(ageing_app, alice, bob, typed["id"])

        found = (await gql.ok(WORDS, {"q": "saxophone"}, token=bob.token))["search"]
        hits = {h["message"]["id"]: h for h in found["hits"]}
        assert found["total"] == 2 and set(hits) == {typed["id"], voice["id"]}
        assert hits[typed["id"]]["matches"] == []
        words = hits[voice["id"]]["message"]["transcript"]["words"]
        spoken = [w for w in words if w["word"].strip(",.").lower() == "saxophone"]
        assert len(spoken) == 2  # both times it was said, with the transcript's own timings
        assert [{k: m[k] for k in ("word", "start", "end")} for m in hits[voice["id"]]["matches"]] == spoken
        # stemmed ("saxophones" finds "saxophone"), the last word a prefix
        stemmed = (await gql.ok(WORDS, {"q": "saxophones rehears"}, token=bob.token))["search"]
        matched = [m["word"] for m in stemmed["hits"][0]["matches"]]
        assert stemmed["total"] == 1 and matched == ["saxophone", "rehearsal", "saxophone"]


async def test_a_transcript_landing_after_the_message_left_the_hot_window_is_searchable(
    ageing_app: InProcessApp, deepgram: FakeDeepgram, tmp_path: Path
) -> None:
    word = unique_word("late")
    deepgram.answer(Outcome(200, listen_response([(f"the {word} arrives late", 0.9)]), delay=WINDOW_SECONDS + 2))
    async with ageing_app.client() as gql:
        alice, bob, carol = await register(gql), await register(gql), await register(gql)
        voice = await send_voice(gql, alice, bob, tmp_path)
        await wait_archived_without_entry(ageing_app, alice, bob, voice["id"])  # still PENDING: no text yet
        deadline = time.monotonic() + 30
        while (await gql.ok(TRANSCRIPT, {"id": voice["id"]}, token=bob.token))["message"]["transcriptionStatus"] \
                != "DONE":
            assert time.monotonic() < deadline, "the transcript never landed"
            await asyncio.sleep(0.1)
        found = (await gql.ok(WORDS, {"q": word}, token=bob.token))["search"]
        assert found["total"] == 1 and [m["word"] for m in found["hits"][0]["matches"]] == [word]
        assert await search(gql, carol, word) == {"total": 0, "hits": []}


async def wait_archived_without_entry(app: InProcessApp, a: Account, b: Account, message_id: str) -> None:
    """Until the message's document left Redis (a message without text leaves no entry)."""
    conversation = direct_conversation_id(a.id, b.id)
    redis = await open_redis(app.redis_url)
    try:
        deadline = time.monotonic() + 30
        while await redis.exists(keys.message_key(conversation, message_id)):
            assert time.monotonic() < deadline, "the message never left the hot window"
            await asyncio.sleep(0.1)
        assert not await redis.exists(keys.archived_message_entry(conversation, message_id))
    finally:
        await redis.aclose()


async def test_archived_messages_are_found_again_after_redis_lost_its_data(ageing_app: InProcessApp) -> None:
    async with ageing_app.client() as gql:
        alice, bob, carol = await register(gql), await register(gql), await register(gql)
        word = unique_word("lost")
        old = await send(gql, alice, bob, f"remember the {word} before the wipe")
        await wait_archived(ageing_app, alice, bob, old["id"])
        redis = await open_redis(ageing_app.redis_url)
        try:
            await redis.flushdb()  # upkeep notices and rebuilds the entries from MongoDB
            deadline = time.monotonic() + 30
            while not await redis.exists(keys.archive_markers_ready()):  # set once restored
                assert time.monotonic() < deadline, "Redis was never restored"
                await asyncio.sleep(0.1)
        finally:
            await redis.aclose()
        found = await search(gql, bob, word)
        assert found["total"] == 1 and ids(found) == [old["id"]]
        await wait_archived(ageing_app, alice, bob, old["id"])  # an entry, not a hot document
        assert await search(gql, carol, word) == {"total": 0, "hits": []}
