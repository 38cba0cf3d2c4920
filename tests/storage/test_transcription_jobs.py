"""The transcription worker against real Redis and MongoDB: a database read error is not a
failed attempt, and a job whose workers keep crashing is given up after a few deliveries."""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient

from api.dev_servers import EmbeddedServers
from storage import keys
from storage.audio import AudioStore
from storage.connections import open_mongo
from storage.ids import new_id
from storage.messages import SENT
from storage.records import StoredAudio, StoredMessage
from storage.slots import partition_of
from tests.conftest import mongodb_url
from tests.storage.conftest import MessageStores
from transcription.base import DisabledTranscriber, TranscriptResult
from transcription.worker import TranscriptionWorker


class FixedTranscriber:
    """An engine that always hears the same words (the worker's storage paths are under test)."""

    name = "fixed"

    async def transcribe(self, audio: bytes, mime_type: str) -> TranscriptResult:
        return TranscriptResult(text="hello there", engine=self.name)

    async def close(self) -> None:
        return None


async def voice_message(stores: MessageStores, audio_id: str | None = None) -> StoredMessage:
    sender, receiver = new_id(), new_id()
    conversation = await stores.direct(sender, receiver)
    message = StoredMessage(
        id=new_id(), kind="VOICE", conversation_id=conversation.id, sender_id=sender, receiver_id=receiver, text="",
        sent_at_ms=int(time.time() * 1000),
        audio=StoredAudio(id=audio_id or new_id(), mime_type="audio/ogg", size_bytes=4, duration_seconds=1.0),
        transcription_status="PENDING",
    )
    assert (await stores.send(message)).status == SENT  # also queues the job on the transcription stream
    return message


async def status(stores: MessageStores, message_id: str) -> str | None:
    found = await stores.messages.find(message_id)
    assert found is not None
    return found.transcription_status


@pytest.fixture
async def audio(dev_servers: EmbeddedServers) -> AsyncIterator[AudioStore]:
    database = f"audio_{uuid.uuid4().hex[:8]}"
    mongo = await open_mongo(mongodb_url(dev_servers, database), database)
    try:
        yield AudioStore(mongo[database])
    finally:
        await mongo.drop_database(database)
        await mongo.close()


async def test_an_audio_read_error_does_not_spend_an_attempt(message_stores: MessageStores) -> None:
    # A MongoDB nobody listens on: reading the audio fails with a real ServerSelectionTimeoutError.
    unreachable: AsyncMongoClient = AsyncMongoClient("mongodb://127.0.0.1:1/x", serverSelectionTimeoutMS=300)
    worker = TranscriptionWorker(message_stores.redis, messages=message_stores.messages,
                                 audio=AudioStore(unreachable["x"]), transcriber=DisabledTranscriber(),
                                 max_attempts=3, retry_base_seconds=0.2)
    redis = message_stores.redis
    try:
        message = await voice_message(message_stores)
        conversation = message.conversation_id
        delayed, stream = (keys.transcription_delayed(partition_of(conversation)),
                           keys.transcription_stream(partition_of(conversation)))
        for _ in range(4):  # more read errors than attempts: the message is still not FAILED
            await redis.delete(delayed)
            asked = time.time() * 1000
            await worker.process(message.id, conversation, 2)
            [(job, due_ms)] = await redis.zrange(delayed, 0, -1, withscores=True)
            assert job.split(":")[:3] == [message.id, conversation, "2"]  # the same attempt, retried later
            assert due_ms - asked >= 150
            assert await status(message_stores, message.id) == "PENDING"
        # Retried with back-off: the job carries its read failures, and each waits longer.
        await redis.delete(delayed)
        await worker.process(message.id, conversation, 2, read_failures=3)
        [(_, later_due_ms)] = await redis.zrange(delayed, 0, -1, withscores=True)
        assert later_due_ms - time.time() * 1000 >= 1000  # 0.2 s doubled three times
        # Released onto the stream as the same attempt, read failures counted.
        await redis.zadd(delayed, {job: 0})
        await worker.release_due()
        entries = await redis.xrange(stream)
        assert entries[-1][1] == {"id": message.id, "conversation": conversation, "attempt": "2",
                                  "read_failures": "1"}
        await redis.zadd(delayed, {f"{message.id}:{conversation}:3": 0})  # an ordinary retry's job
        await worker.release_due()
        assert (await redis.xrange(stream))[-1][1] == {"id": message.id, "conversation": conversation,
                                                       "attempt": "3"}
    finally:
        await unreachable.close()


async def deliver(stores: MessageStores, stream: str, entry_id: str, times: int) -> None:
    """Hand `entry_id` to `times` consumers that crash (never acknowledge)."""
    for n in range(times):
        await stores.redis.xclaim(stream, keys.TRANSCRIPTION_GROUP, f"crashed-{n}", 0, [entry_id])


async def test_a_job_whose_workers_keep_crashing_is_failed(message_stores: MessageStores, audio: AudioStore) -> None:
    redis = message_stores.redis
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "a.ogg"
        path.write_bytes(b"OggS")
        doomed_audio, lucky_audio = new_id(), new_id()
        for audio_id in (doomed_audio, lucky_audio):
            await audio.save(audio_id=audio_id, owner_id="o", path=path, mime_type="audio/ogg",
                             duration_seconds=1.0, sha256="-", size_bytes=4)
    doomed = await voice_message(message_stores, doomed_audio)
    lucky = await voice_message(message_stores, lucky_audio)
    streams = [keys.transcription_stream(partition_of(m.conversation_id)) for m in (doomed, lucky)]
    for stream in set(streams):  # two partitions, or one
        await redis.xgroup_create(stream, keys.TRANSCRIPTION_GROUP, id="0")
    entries = []
    for stream in streams:
        [(_, delivered)] = await redis.xreadgroup(keys.TRANSCRIPTION_GROUP, "crashed", {stream: ">"}, count=1)
        entries += [(stream, entry_id) for entry_id, _ in delivered]  # each delivered once now
    (doomed_stream, doomed_entry), (lucky_stream, lucky_entry) = entries
    await deliver(message_stores, doomed_stream, doomed_entry, 4)  # 5 deliveries, all crashed
    await deliver(message_stores, lucky_stream, lucky_entry, 3)  # 4 deliveries: one more try is allowed

    worker = TranscriptionWorker(redis, messages=message_stores.messages, audio=audio,
                                 transcriber=FixedTranscriber(), claim_idle_ms=0, max_deliveries=5)
    await worker.start()
    try:
        async with asyncio.timeout(15):
            while "PENDING" in {await status(message_stores, doomed.id), await status(message_stores, lucky.id)}:
                await asyncio.sleep(0.1)
    finally:
        await worker.stop()
    assert await status(message_stores, doomed.id) == "FAILED"
    assert await status(message_stores, lucky.id) == "DONE"
    for stream in set(streams):
        assert (await redis.xpending(stream, keys.TRANSCRIPTION_GROUP))["pending"] == 0
