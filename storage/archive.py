"""The MongoDB message archive, and moving messages between it and the Redis hot window."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from pymongo import ReplaceOne
from redis.asyncio import Redis

from storage import keys
from storage.cold import MessageDoc
from storage.ids import first_id_at
from storage.messages import StoredMessage, message_key

log = logging.getLogger(__name__)


def to_doc(message: StoredMessage) -> dict[str, object]:
    return {
        "_id": message.id,
        "client_id": message.client_id,
        "kind": message.kind,
        "sender_id": message.sender_id,
        "receiver_id": message.receiver_id,
        "conversation": message.conversation,
        "text": message.text,
        "sent_at": datetime.fromtimestamp(message.sent_at_ms / 1000, UTC),
    }


def from_doc(doc: MessageDoc) -> StoredMessage:
    return StoredMessage(
        id=doc.id,
        kind=doc.kind,
        sender_id=doc.sender_id,
        receiver_id=doc.receiver_id,
        text=doc.text,
        sent_at_ms=int(doc.sent_at.timestamp() * 1000),
        client_id=doc.client_id,
    )


async def upsert_messages(messages: Sequence[StoredMessage]) -> None:
    """Idempotent: replaying the same messages leaves one document each, latest state."""
    if not messages:
        return
    collection = MessageDoc.get_pymongo_collection()
    await collection.bulk_write(
        [ReplaceOne({"_id": m.id}, to_doc(m), upsert=True) for m in messages], ordered=False
    )


async def get_message(message_id: str) -> StoredMessage | None:
    doc = await MessageDoc.get(message_id)
    return from_doc(doc) if doc else None


async def page(conversation: str, *, before: str | None, limit: int) -> list[StoredMessage]:
    """Up to `limit` archived messages older than `before`, newest first."""
    query: dict[str, object] = {"conversation": conversation}
    if before:
        query["_id"] = {"$lt": before}
    docs = await MessageDoc.find(query).sort("-_id").limit(limit).to_list()
    return [from_doc(d) for d in docs]


async def archived_ids(message_ids: Sequence[str]) -> set[str]:
    if not message_ids:
        return set()
    collection = MessageDoc.get_pymongo_collection()
    cursor = collection.find({"_id": {"$in": list(message_ids)}}, {"_id": 1})
    return {doc["_id"] async for doc in cursor}


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
        messages = [from_doc(MessageDoc.model_validate({**d, "id": d["_id"]})) for d in docs]
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
        archived = await archived_ids(ids)
        async with redis.pipeline(transaction=False) as pipe:
            for message_id in ids:
                pipe.exists(message_key(message_id))
            has_document = dict(zip(ids, await pipe.execute(), strict=True))
        safe: list[str] = []
        orphans: list[str] = []  # an id without a document has nothing left to archive
        for message_id in ids:
            if message_id in archived:
                safe.append(message_id)
            elif not has_document[message_id]:
                orphans.append(message_id)
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
