"""The MongoDB message archive, and moving messages between it and the Redis hot window."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any
from datetime import UTC, datetime

from pymongo import ReplaceOne
from pymongo.errors import BulkWriteError
from redis.asyncio import Redis

from storage import keys
from storage.cold import MessageDoc
from storage.ids import first_id_at
from storage.messages import MessageEventPayload, MessageStore, StoredMessage, message_key

log = logging.getLogger(__name__)


def to_doc(message: StoredMessage) -> dict[str, object]:
    """The MongoDB document: the hot document with `_id` and a real `sent_at` date."""
    doc = message.to_document()
    doc.pop("participants")
    doc["_id"] = doc.pop("pk")
    doc["sent_at"] = datetime.fromtimestamp(message.sent_at_ms / 1000, UTC)
    return doc


def from_raw(doc: dict[str, Any]) -> StoredMessage:
    return StoredMessage.from_document({**doc, "pk": doc["_id"]})


DUPLICATE_KEY = 11000


async def upsert_messages(messages: Sequence[StoredMessage]) -> None:
    """Idempotent: replaying the same messages leaves one document each, latest state.

    Most messages are new, so they are inserted in one unordered batch (an insert costs the
    server less than half of an upsert, `make bench`); those already archived (a transcript that
    landed, an outbox entry replayed after a crash) fail on the unique `_id` and are replaced.
    """
    if not messages:
        return
    collection = MessageDoc.get_pymongo_collection()
    docs = [to_doc(m) for m in messages]
    try:
        await collection.insert_many(docs, ordered=False)
        return
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(e.get("code") != DUPLICATE_KEY for e in errors):
            raise
        archived = [docs[e["index"]] for e in errors]
    await collection.bulk_write(
        [ReplaceOne({"_id": doc["_id"]}, doc, upsert=True) for doc in archived], ordered=False
    )


async def get_message(message_id: str) -> StoredMessage | None:
    doc = await MessageDoc.get_pymongo_collection().find_one({"_id": message_id})
    return from_raw(doc) if doc else None


async def page(conversation: str, *, before: str | None, limit: int) -> list[StoredMessage]:
    """Up to `limit` archived messages older than `before`, newest first."""
    query: dict[str, object] = {"conversation": conversation}
    if before:
        query["_id"] = {"$lt": before}
    cursor = MessageDoc.get_pymongo_collection().find(query).sort("_id", -1).limit(limit)
    return [from_raw(d) async for d in cursor]


async def archived_revisions(message_ids: Sequence[str]) -> dict[str, int]:
    """Message id -> the revision MongoDB holds, for those it has."""
    if not message_ids:
        return {}
    collection = MessageDoc.get_pymongo_collection()
    cursor = collection.find({"_id": {"$in": list(message_ids)}}, {"_id": 1, "rev": 1})
    return {doc["_id"]: int(doc.get("rev", 0)) async for doc in cursor}


async def hydrate_hot_window(redis: Redis, *, window_start_ms: int, batch_size: int = 500) -> int:
    """Copy every archived message of the hot window that Redis lacks back into Redis.

    No outbox entry and no event: these are already durable and were delivered before.
    """
    restored = 0
    collection = MessageDoc.get_pymongo_collection()
    id_filter: dict[str, str] = {"$gte": first_id_at(window_start_ms)}
    while True:
        docs = await collection.find({"_id": id_filter}).sort("_id", 1).limit(batch_size).to_list()
        if not docs:
            break
        messages = [from_raw(d) for d in docs]
        async with redis.pipeline(transaction=False) as pipe:
            for m in messages:
                pipe.exists(message_key(m.id))
            present = await pipe.execute()
        async with redis.pipeline(transaction=False) as pipe:
            for m, exists in zip(messages, present, strict=True):
                if not exists:
                    pipe.json().set(message_key(m.id), "$", m.to_document())
                    pipe.zadd(keys.conversation_messages(m.conversation), {m.id: 0})
                    pipe.zadd(keys.hot_messages(), {m.id: 0})
                    restored += 1
            await pipe.execute()
        id_filter = {"$gt": docs[-1]["_id"]}
    if restored:
        log.info("hydrated the hot window from MongoDB", extra={"restored": restored})
    return restored


async def rebuild_archive_markers(redis: Redis, *, window_start_ms: int, batch_size: int = 1000) -> int:
    """After Redis lost its data (or on a new Redis), mark every conversation that has
    messages older than the hot window: those exist only in MongoDB. Runs once per Redis
    dataset; afterwards trimming keeps the markers."""
    if await redis.exists(keys.archive_markers_ready()):
        return 0
    collection = MessageDoc.get_pymongo_collection()
    cursor = await collection.aggregate([
        {"$match": {"_id": {"$lt": first_id_at(window_start_ms)}}},
        {"$group": {"_id": "$conversation"}},
    ])
    marked = 0
    batch: list[str] = []
    async for row in cursor:
        batch.append(row["_id"])
        if len(batch) >= batch_size:
            marked += await redis.sadd(keys.archived_conversations(), *batch)
            batch = []
    if batch:
        marked += await redis.sadd(keys.archived_conversations(), *batch)
    await redis.set(keys.archive_markers_ready(), "1")
    return marked


async def has_archived_only_messages(redis: Redis, conversation: str) -> bool:
    return bool(await redis.sismember(keys.archived_conversations(), conversation))


async def trim_hot_window(redis: Redis, *, window_start_ms: int, batch_size: int = 500) -> int:
    """Remove from Redis the messages older than the window that MongoDB has, oldest first,
    stopping at the first one not archived yet: what stays in Redis is always the newest
    part of every conversation, which history paging relies on."""
    removed = 0
    cutoff = first_id_at(window_start_ms)
    while True:
        ids = await redis.zrange(keys.hot_messages(), "-", f"({cutoff}", bylex=True, offset=0, num=batch_size)
        if not ids:
            break
        archived = await archived_revisions(ids)
        hot_revisions = await redis.json().mget([message_key(i) for i in ids], "$.rev")
        safe: list[str] = []
        orphans: list[str] = []  # an id without a document has nothing left to archive
        for message_id, hot in zip(ids, hot_revisions, strict=True):
            if hot is None:
                orphans.append(message_id)
            elif message_id in archived and archived[message_id] >= int(hot[0] if hot else 0):
                safe.append(message_id)  # MongoDB has this state (or a later one)
            else:
                break
        if orphans:
            await redis.zrem(keys.hot_messages(), *orphans)
        if safe:
            conversations = await redis.json().mget([message_key(i) for i in safe], "$.conversation")
            async with redis.pipeline(transaction=True) as pipe:
                for message_id, conversation in zip(safe, conversations, strict=True):
                    if conversation:
                        pipe.sadd(keys.archived_conversations(), conversation[0])
                        pipe.zrem(keys.conversation_messages(conversation[0]), message_id)
                    pipe.delete(message_key(message_id))
                    pipe.zrem(keys.hot_messages(), message_id)
                await pipe.execute()
            removed += len(safe)
        if len(safe) + len(orphans) < len(ids):
            break  # the rest waits for the persister
    if removed:
        log.info("trimmed the hot window", extra={"removed": removed})
    return removed


async def update_anywhere(store: MessageStore, message: StoredMessage, *, queue_transcription: bool = False) -> None:
    """Update a message wherever it lives: in the hot window (atomic, persisted through the
    outbox), or — when it already left Redis — directly in MongoDB; UPDATED is published
    either way."""
    if await store.update(message, queue_transcription=queue_transcription):
        return
    log.info("updating an archived message", extra={"message_id": message.id})
    await upsert_messages([message])
    async with store.redis.pipeline(transaction=True) as pipe:
        if queue_transcription:
            pipe.xadd(keys.TRANSCRIPTION_STREAM, {"id": message.id, "attempt": "1"})
        event = MessageEventPayload("UPDATED", message).encode()
        for user_id in {message.sender_id, message.receiver_id}:
            pipe.publish(keys.user_events(user_id), event)
        await pipe.execute()
