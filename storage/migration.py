"""Start-up migration from the pair model (conversations keyed by two user ids) to
conversations as entities. Idempotent, and safe with several instances starting at once.

MongoDB: every message gets `conversation_id` (the pair's DIRECT conversation), each pair a
`conversations` document, each read marker its `<conversation>:<user>` form. Redis: nothing
acknowledged may be lost, so every hot message in the old layout is first written to MongoDB
(never over a newer revision), then the old keys go and the hot window is hydrated anew in
the new layout; read markers, clientId reservations and pending transcription jobs are carried
over (the global streams and sets become one per partition). A dataset of layout 2 (the
first entity layout) only has each user's conversation list split into the partitions.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from storage import keys
from storage.archive import ArchiveStore
from storage.conversation_lists import touch_commands
from storage.hot import KEY_PREFIX
from storage.ids import direct_conversation_id, id_timestamp_ms, is_valid_id
from storage.read_markers import ReadMarkerArchive
from storage.records import StoredMessage
from storage.scripts import run_commands
from storage.slots import partition_of

log = logging.getLogger(__name__)

LAYOUT = "3"  # 2: conversations as entities, keys hash-tagged per partition and per user;
# 3: each user's conversation list split into the conversations' partitions.
_ENTITY_LAYOUT = "2"
_PER_USER_LISTS = f"{KEY_PREFIX}:user:{{u:*}}:convs"  # layout 2's conversation lists, one per user
_LOCK = f"{KEY_PREFIX}:migration-lock"
# Old-layout key patterns that only the pair model wrote (the new layout tags keys with `{`).
_OLD_PATTERNS = ("conv:*", "conv-sent:*", "convs:*", "convs-built:*", "unread:*", "read:*", "readat:*",
                 "typing:*", "archive:*")
# The pair model's global keys; the new layout has one of each per partition.
_OLD_OUTBOX = f"{KEY_PREFIX}:outbox"
_OLD_TRANSCRIPTION_STREAM = f"{KEY_PREFIX}:transcribe"
_OLD_TRANSCRIPTION_DELAYED = f"{KEY_PREFIX}:transcribe:delayed"  # "id:attempt[:read failures]" -> due ms
_OLD_HOT_MESSAGES = f"{KEY_PREFIX}:messages:hot"


def _pair(conversation: str) -> tuple[str, str]:
    a, _, b = conversation.partition(":")
    return a, b


async def migrate_pair_model(redis: Redis, database: AsyncDatabase[Any], archive: ArchiveStore) -> None:
    await _migrate_mongo(database)
    if await redis.get(keys.layout_version()) == LAYOUT:
        return
    while not await redis.set(_LOCK, "1", nx=True, px=60_000):  # another instance migrates
        await asyncio.sleep(0.2)
        if await redis.get(keys.layout_version()) == LAYOUT:
            return
    try:
        layout = await redis.get(keys.layout_version())
        if layout != LAYOUT:
            if layout != _ENTITY_LAYOUT:
                await _migrate_redis(redis, database, archive)
            await _split_conversation_lists(redis)
            await redis.set(keys.layout_version(), LAYOUT)
    finally:
        await redis.delete(_LOCK)


async def _migrate_mongo(database: AsyncDatabase[Any]) -> None:
    messages, conversations = database["messages"], database["conversations"]
    pairs = await (await messages.aggregate([
        {"$match": {"conversation_id": {"$exists": False}, "conversation": {"$exists": True}}},
        {"$group": {"_id": "$conversation", "first": {"$min": "$_id"}}},
    ])).to_list()
    for row in pairs:
        a, b = _pair(row["_id"])
        conversation_id = await _ensure_direct_document(conversations, a, b, row["first"])
        await messages.update_many({"conversation": row["_id"], "conversation_id": {"$exists": False}},
                                   {"$set": {"conversation_id": conversation_id}, "$unset": {"conversation": ""}})
    if pairs:
        log.info("migrated archived messages to conversations", extra={"conversations": len(pairs)})
    markers = database["read_markers"]
    old = await markers.find({"conversation_id": {"$exists": False}}).to_list()
    if old:
        await markers.bulk_write([
            UpdateOne({"_id": f"{direct_conversation_id(m['user_id'], m['partner_id'])}:{m['user_id']}"},
                      {"$max": {"up_to": m["up_to"], "at": m["at"]},
                       "$setOnInsert": {"conversation_id": direct_conversation_id(m["user_id"], m["partner_id"]),
                                        "user_id": m["user_id"]}}, upsert=True)
            for m in old
        ], ordered=False)
        await markers.delete_many({"_id": {"$in": [m["_id"] for m in old]}})


async def _ensure_direct_document(conversations: AsyncCollection[Any], a: str, b: str, first_message: str) -> str:
    """The pair's DIRECT conversation in MongoDB, made (as of its first message) if missing."""
    conversation_id = direct_conversation_id(a, b)
    since = datetime.fromtimestamp(id_timestamp_ms(first_message) / 1000, UTC)
    await conversations.update_one({"_id": conversation_id}, {"$setOnInsert": {
        "kind": "DIRECT", "title": None, "version": 1, "created_at": since, "updated_at": since,
        "archived_at": None,
        "members": [{"user_id": u, "role": "MEMBER", "joined_at": since} for u in sorted({a, b})],
    }}, upsert=True)
    return conversation_id


async def _migrate_redis(redis: Redis, database: AsyncDatabase[Any], archive: ArchiveStore) -> None:
    archived = await _archive_old_messages(redis, database, archive)
    await _drop_old_outbox_entries(redis, ReadMarkerArchive(database["read_markers"]))
    carried = await _carry_read_markers(redis) + await _carry_client_ids(redis)
    carried += await _carry_transcription_jobs(redis, database)
    for pattern in _OLD_PATTERNS:
        async for key in redis.scan_iter(match=f"{KEY_PREFIX}:{pattern}", count=1000):
            if "{" not in key:
                await redis.delete(key)
    await redis.delete(_OLD_HOT_MESSAGES)  # bare ids of the messages archived above: hydrate refills
    log.info("migrated Redis to the conversation layout", extra={"messages": archived, "carried": carried})


async def _archive_old_messages(redis: Redis, database: AsyncDatabase[Any], archive: ArchiveStore) -> int:
    """Write every old-layout hot message to MongoDB (never over a newer revision), with its
    pair's conversation document, then drop it: the hot window is hydrated again in the new layout."""
    count = 0
    firsts: dict[tuple[str, str], str] = {}
    batch: list[tuple[str, StoredMessage]] = []
    async for key in redis.scan_iter(match=f"{keys.MESSAGE_PREFIX}*", count=1000):
        if not is_valid_id(key.removeprefix(keys.MESSAGE_PREFIX)):  # new-layout keys, the index's own
            continue
        raw = await redis.json().get(key, "$")
        if raw:
            doc = raw[0]
            a, b = _pair(doc.get("conversation") or f"{doc['sender_id']}:{doc['receiver_id']}")
            doc["conversation_id"] = direct_conversation_id(a, b)
            firsts[(a, b)] = min(firsts.get((a, b), doc["pk"]), doc["pk"])
            batch.append((key, StoredMessage.from_document(doc)))
        if len(batch) >= 500:
            count += await _archive_and_drop(redis, archive, batch)
            batch = []
    count += await _archive_and_drop(redis, archive, batch)
    for (a, b), first in firsts.items():
        await _ensure_direct_document(database["conversations"], a, b, first)
    return count


async def _archive_and_drop(redis: Redis, archive: ArchiveStore, batch: list[tuple[str, StoredMessage]]) -> int:
    if not batch:
        return 0
    await archive.upsert([m for _, m in batch])
    await redis.delete(*[key for key, _ in batch])
    return len(batch)


async def _drop_old_outbox_entries(redis: Redis, read_markers: ReadMarkerArchive) -> None:
    """Drain the old global outbox, then delete it (with its consumer group). Its entries name
    messages by id alone (archived above: dropped) or read markers by pair (written to MongoDB
    in their new form first: an acknowledged read never moves back); an entry that names its
    conversation already moves to that conversation's partition's outbox."""
    after = "-"
    while entries := await redis.xrange(_OLD_OUTBOX, min=after, count=500):
        await read_markers.persist([
            {"conversation": direct_conversation_id(f["user"], f["partner"]), "user": f["user"],
             "up_to": f["up_to"], "at": f["at"]}
            for _, f in entries if f.get("kind") == "read" and "conversation" not in f
        ])
        for entry_id, fields in entries:
            if "conversation" in fields:
                await _move_entry(redis, entry_id, fields, keys.outbox_stream(partition_of(fields["conversation"])))
        await redis.xdel(_OLD_OUTBOX, *[entry_id for entry_id, _ in entries])
        after = f"({entries[-1][0]}"
    await redis.delete(_OLD_OUTBOX)


async def _move_entry(redis: Redis, entry_id: str, fields: dict[str, str], stream: str) -> None:
    """Append an old stream's entry to `stream` under its old id (so a repeated run, after a
    crash between the append and the old entry's deletion, finds it there and adds nothing);
    under a new id if `stream` already holds later ones."""
    if await redis.xrange(stream, min=entry_id, max=entry_id):
        return
    try:
        await redis.xadd(stream, fields, id=entry_id)
    except ResponseError as exc:  # "equal or smaller than the target stream top item"
        if "smaller" not in str(exc):
            raise
        await redis.xadd(stream, fields)


async def _carry_transcription_jobs(redis: Redis, database: AsyncDatabase[Any]) -> int:
    """The old global transcription stream (pending jobs included: their worker is gone) and
    delayed set, each job moved to the partition of its message's conversation, which it now
    names. Every message is in MongoDB by now (archived above) with its conversation; a job
    whose message is nowhere is dropped (the worker would drop it too)."""
    messages = database["messages"]

    async def conversations_of(message_ids: list[str]) -> dict[str, str]:
        found = messages.find({"_id": {"$in": message_ids}}, {"conversation_id": 1})
        return {doc["_id"]: doc["conversation_id"] async for doc in found if doc.get("conversation_id")}

    carried = 0
    after = "-"
    while entries := await redis.xrange(_OLD_TRANSCRIPTION_STREAM, min=after, count=500):
        jobs = [(entry_id, fields) for entry_id, fields in entries if fields.get("id")]
        located = await conversations_of([fields["id"] for _, fields in jobs])
        for entry_id, fields in jobs:
            conversation_id = fields.get("conversation") or located.get(fields["id"])
            if conversation_id is None:
                log.warning("dropped a transcription job without its message", extra={"message_id": fields["id"]})
                continue
            await _move_entry(redis, entry_id, {**fields, "conversation": conversation_id},
                              keys.transcription_stream(partition_of(conversation_id)))
            carried += 1
        await redis.xdel(_OLD_TRANSCRIPTION_STREAM, *[entry_id for entry_id, _ in entries])
        after = f"({entries[-1][0]}"
    await redis.delete(_OLD_TRANSCRIPTION_STREAM)
    while delayed := await redis.zrange(_OLD_TRANSCRIPTION_DELAYED, 0, 499, withscores=True):
        located = await conversations_of([job.split(":", 1)[0] for job, _ in delayed])
        for job, due_ms in delayed:
            message_id, _, rest = job.partition(":")
            if (conversation_id := located.get(message_id)) is not None:
                await redis.zadd(keys.transcription_delayed(partition_of(conversation_id)),
                                 {f"{message_id}:{conversation_id}:{rest}": due_ms})
                carried += 1
            else:
                log.warning("dropped a transcription job without its message", extra={"message_id": message_id})
            await redis.zrem(_OLD_TRANSCRIPTION_DELAYED, job)
    return carried


async def _carry_read_markers(redis: Redis) -> int:
    carried = 0
    async for key in redis.scan_iter(match=f"{KEY_PREFIX}:read:*", count=1000):
        if "{" in key:
            continue
        user_id = key.rsplit(":", 1)[1]
        markers = await redis.hgetall(key)
        times = await redis.hgetall(f"{KEY_PREFIX}:readat:{user_id}")
        for partner_id, up_to in markers.items():
            conversation_id = direct_conversation_id(user_id, partner_id)
            current = await redis.hget(keys.read_markers(conversation_id), user_id)
            if current is None or current < up_to:
                async with redis.pipeline(transaction=True) as pipe:  # both keys share a slot
                    pipe.hset(keys.read_markers(conversation_id), user_id, up_to)
                    pipe.hset(keys.read_times(conversation_id), user_id, times.get(partner_id) or 0)
                    await pipe.execute()
                carried += 1
    return carried


async def _carry_client_ids(redis: Redis) -> int:
    carried = 0
    async for key in redis.scan_iter(match=f"{KEY_PREFIX}:clientid:*", count=1000):
        _, _, sender_id, client_id = key.split(":", 3)
        message_id, ttl = await redis.get(key), await redis.ttl(key)
        if message_id and ttl > 0:
            await redis.set(keys.client_id(sender_id, client_id), message_id, ex=ttl, nx=True)
            carried += 1
        await redis.delete(key)
    return carried


async def _split_conversation_lists(redis: Redis) -> None:
    """Layout 2 kept a user's whole conversation list in the user's slot; layout 3 keeps each
    entry in its conversation's partition, where the send script moves it. Copied with ZADD GT,
    then dropped: a run again after a crash repeats it harmlessly."""
    moved = 0
    async for key in redis.scan_iter(match=_PER_USER_LISTS, count=1000):
        user_id = key.split("{u:", 1)[1].split("}", 1)[0]
        entries = await redis.zrange(key, 0, -1, withscores=True)
        await run_commands(redis, [command for conversation_id, at_ms in entries
                                   for command in touch_commands([user_id], conversation_id, int(at_ms))])
        await redis.delete(key)
        moved += 1
    if moved:
        log.info("split conversation lists into the conversations' partitions", extra={"lists": moved})
