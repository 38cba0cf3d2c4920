"""Redis loses its data while the app runs (FLUSHDB, a restart without persistence): the
periodic upkeep notices (`HotWindow.upkeep`: the archive markers' sentinel is gone) and restores
from MongoDB what search, user lookups and transcription need, on an in-process app with a short
upkeep period."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis.asyncio as aioredis
from pymongo import AsyncMongoClient

from storage import keys
from storage.archive import to_doc
from storage.ids import new_id
from storage.records import StoredAudio, StoredMessage
from tests.utils.graphql import register, send
from tests.utils.in_process import InProcessApp, InProcessApps
from tests.utils.search import message_hits, search, unique_name_with, unique_word

UPKEEP = {"hot_window_trim_seconds": 0.2}


@pytest.fixture(scope="module")
async def recovering(in_process_apps: InProcessApps) -> InProcessApp:
    return await in_process_apps.start(**UPKEEP)


async def _archived(app: InProcessApp, message_ids: list[str], timeout: float = 10) -> None:
    mongo: AsyncMongoClient[Any] = AsyncMongoClient(app.mongodb_url)
    try:
        deadline = time.monotonic() + timeout
        while await mongo[app.database]["messages"].count_documents({"_id": {"$in": message_ids}}) < len(message_ids):
            assert time.monotonic() < deadline, "never archived"
            await asyncio.sleep(0.05)
    finally:
        await mongo.close()


async def _lose_everything(app: InProcessApp) -> None:
    """FLUSHDB under the running app, then wait until its upkeep restored the markers' sentinel."""
    client = aioredis.Redis.from_url(app.redis_url, decode_responses=True)
    try:
        await client.flushdb()
        deadline = time.monotonic() + 10
        while not await client.exists(keys.archive_markers_ready()):
            assert time.monotonic() < deadline, "the upkeep never noticed the loss"
            await asyncio.sleep(0.05)
    finally:
        await client.aclose()


async def test_search_and_username_lookup_work_again_after_redis_lost_its_data(recovering: InProcessApp) -> None:
    async with recovering.client() as gql:
        alice, bob = await register(gql), await register(gql)
        carol = await register(gql, unique_name_with("recovered"))  # untouched after the loss
        word = unique_word()
        message = await send(gql, alice, bob, f"remember the {word}")
        await _archived(recovering, [message["id"]])

        await _lose_everything(recovering)

        # (a) the RediSearch indexes exist again and cover the restored messages
        hits = message_hits(await search(gql, bob, word))
        assert [h["message"]["id"] for h in hits] == [message["id"]]
        # (b) the user mirror is back: a user nobody touched since is found by username
        found = await search(gql, bob, carol.username)
        assert [h["user"]["id"] for h in found["hits"] if h["__typename"] == "UserHit"] == [carol.id]


async def test_a_pending_voice_message_is_transcribed_after_redis_lost_its_job(recovering: InProcessApp) -> None:
    """A voice message MongoDB has as PENDING whose job was only in Redis: the restore queues it
    again. The app's engine is `none`, so the worker settles the job as FAILED: it ran."""
    conversation, sender, receiver = new_id(), new_id(), new_id()
    pending = StoredMessage(
        id=new_id(), kind="VOICE", conversation_id=conversation, sender_id=sender, receiver_id=receiver, text="",
        sent_at_ms=int(time.time() * 1000),
        audio=StoredAudio(id=new_id(), mime_type="audio/ogg", size_bytes=4, duration_seconds=1.0),
        transcription_status="PENDING",
    )
    mongo: AsyncMongoClient[Any] = AsyncMongoClient(recovering.mongodb_url)
    try:
        messages = mongo[recovering.database]["messages"]
        await messages.insert_one(to_doc(pending))  # archived; its job is lost with Redis below

        await _lose_everything(recovering)

        deadline = time.monotonic() + 10
        while (await messages.find_one({"_id": pending.id}) or {}).get("transcription_status") == "PENDING":
            assert time.monotonic() < deadline, "the PENDING voice message was never queued again"
            await asyncio.sleep(0.05)
        assert (await messages.find_one({"_id": pending.id}) or {})["transcription_status"] == "FAILED"
    finally:
        await mongo.close()


async def test_a_client_id_retried_after_redis_lost_its_data_gives_the_first_message(
    recovering: InProcessApp,
) -> None:
    async with recovering.client() as gql:
        alice, bob = await register(gql), await register(gql)
        first = await send(gql, alice, bob, "only once", client_id="retry-me")
        await _archived(recovering, [first["id"]])

        await _lose_everything(recovering)

        again = await send(gql, alice, bob, "only once", client_id="retry-me")
        assert again["id"] == first["id"]
