"""Conversations as entities: MongoDB `conversations` is the authority on members, roles and
titles; Redis mirrors each conversation (meta and members hashes, in the conversation's
partition) so the send, read and typing scripts check membership in the same atomic step.

A change is a compare-and-set on the MongoDB document's `version`, then a mirror of the new
state into Redis that never replaces a newer copy with an older one. A DIRECT conversation is
made on the first message without MongoDB (its id is derived from the pair, so every instance
makes the same one): the Redis script creates it and queues it on the outbox, and the persister
writes it to MongoDB. When MongoDB already had it, Redis had lost it and made it again: the
persister then restores MongoDB's creation time and read markers into Redis.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from redis.asyncio import Redis

from storage import keys
from storage.archive import ArchiveStore
from storage.ids import direct_conversation_id, id_timestamp_ms
from storage.read_markers import ReadMarkerArchive
from storage.records import StoredConversation, StoredMember
from storage.scripts import run_pipelined
from storage.slots import partition_of

log = logging.getLogger(__name__)

DIRECT_CACHE_SIZE = 10_000  # a few MB: the DIRECT conversations this process sends in most

# KEYS: meta, members. ARGV: version, kind, title, created ms, closed, then member, "role:joined ms" pairs.
# An older or equal version changes nothing: two instances mirroring at once cannot go back.
_MIRROR = """
local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if current >= tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[2])
for i = 6, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'kind', ARGV[2], 'title', ARGV[3], 'created_ms', ARGV[4],
           'closed', ARGV[5])
return 1
"""

# KEYS: meta, members. Both hashes as one consistent reading (a mirror never shows half a change).
_READ_MIRROR = """
return {redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2])}
"""

# KEYS: meta, members, the partition's outbox. ARGV: conversation id, created ms, member a, member b.
# Makes the conversation unless Redis has it (a racing instance made it); either way returns
# the mirror as `_READ_MIRROR` does, so the caller needs no second read.
_CREATE_DIRECT = """
if redis.call('HEXISTS', KEYS[1], 'version') == 0 then
  redis.call('HSET', KEYS[1], 'version', 1, 'kind', 'DIRECT', 'title', '', 'created_ms', ARGV[2], 'closed', 0)
  redis.call('HSET', KEYS[2], ARGV[3], 'MEMBER:' .. ARGV[2], ARGV[4], 'MEMBER:' .. ARGV[2])
  redis.call('XADD', KEYS[3], '*', 'kind', 'conversation', 'conversation', ARGV[1])
end
return {redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2])}
"""


# KEYS: meta, members. ARGV: created ms, then member, "role:joined ms" pairs: MongoDB's copy of a
# DIRECT conversation Redis made again after losing it. A pair's members never change, so only
# the times differ; anything else (a group) is left alone.
_ADOPT_DIRECT = """
if redis.call('HGET', KEYS[1], 'kind') ~= 'DIRECT' then return 0 end
redis.call('HSET', KEYS[1], 'created_ms', ARGV[1])
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
return 1
"""


def _ms(at: datetime) -> int:
    return int(at.replace(tzinfo=at.tzinfo or UTC).timestamp() * 1000)


def _date(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def to_doc(conversation: StoredConversation) -> dict[str, Any]:
    return {
        "_id": conversation.id,
        "kind": conversation.kind,
        "title": conversation.title,
        "members": [{"user_id": m.user_id, "role": m.role, "joined_at": _date(m.joined_ms)}
                    for m in conversation.members],
        "version": conversation.version,
        "created_at": _date(conversation.created_ms),
        "updated_at": datetime.now(UTC),
        "archived_at": datetime.now(UTC) if conversation.archived else None,
    }


def from_doc(doc: dict[str, Any]) -> StoredConversation:
    return StoredConversation(
        id=doc["_id"], kind=doc["kind"], title=doc.get("title"), version=int(doc["version"]),
        members=tuple(StoredMember(m["user_id"], m["role"], _ms(m["joined_at"])) for m in doc["members"]),
        created_ms=_ms(doc["created_at"]), archived=doc.get("archived_at") is not None,
    )


def from_mirror(conversation_id: str, meta: dict[str, str], members: dict[str, str]) -> StoredConversation:
    parsed = []
    for user_id, value in members.items():
        role, _, joined = value.partition(":")
        parsed.append(StoredMember(user_id, role, int(joined)))
    parsed.sort(key=lambda m: (m.joined_ms, m.user_id))  # longest-standing first
    return StoredConversation(
        id=conversation_id, kind=meta["kind"], title=meta.get("title") or None, version=int(meta["version"]),
        members=tuple(parsed), created_ms=int(meta["created_ms"]), archived=meta.get("closed") == "1",
    )


def _mirror_of(conversation_id: str, reply: list[list[str]]) -> StoredConversation | None:
    """A `_READ_MIRROR` reply as a conversation; None when Redis has no mirror of it."""
    flat_meta, flat_members = reply
    meta = dict(zip(flat_meta[::2], flat_meta[1::2], strict=True))
    if "version" not in meta:
        return None
    return from_mirror(conversation_id, meta, dict(zip(flat_members[::2], flat_members[1::2], strict=True)))


def _member_fields(conversation: StoredConversation) -> list[str]:
    """The members hash of a mirror, flat: member id, "role:joined ms", ..."""
    return [field for m in conversation.members for field in (m.user_id, f"{m.role}:{m.joined_ms}")]


def _mirror_keys(conversation_id: str) -> list[str]:
    """The keys of a conversation's mirror: meta, members (one slot)."""
    return [keys.conversation_meta(conversation_id), keys.conversation_members(conversation_id)]


def new_direct(a: str, b: str, now_ms: int) -> StoredConversation:
    members = tuple(StoredMember(u, "MEMBER", now_ms) for u in sorted({a, b}))
    return StoredConversation(id=direct_conversation_id(a, b), kind="DIRECT", members=members, version=1,
                              created_ms=now_ms)


class ConversationStore:
    def __init__(
        self, redis: Redis, collection: AsyncCollection[dict[str, Any]], archive: ArchiveStore,
        read_markers: ReadMarkerArchive,
    ) -> None:
        self.redis = redis
        self.collection = collection
        self.archive = archive
        self.read_markers = read_markers
        self._mirror = redis.register_script(_MIRROR)
        self._read_mirror = redis.register_script(_READ_MIRROR)
        self._directs: OrderedDict[str, StoredConversation] = OrderedDict()  # LRU, see `known_direct`
        self._create_direct = redis.register_script(_CREATE_DIRECT)
        self._adopt_direct = redis.register_script(_ADOPT_DIRECT)

    async def get(self, conversation_id: str) -> StoredConversation | None:
        """From the Redis mirror; from MongoDB (mirrored on the way) when Redis lacks it."""
        return (await self.get_many([conversation_id]))[conversation_id]

    async def get_many(self, conversation_ids: Sequence[str]) -> dict[str, StoredConversation | None]:
        """Each conversation as `get` finds it: the mirrors in one round-trip, MongoDB for the rest."""
        replies = await run_pipelined(self.redis, self._read_mirror,
                                      [(_mirror_keys(c), ()) for c in conversation_ids])  # one slot each
        found = {c: _mirror_of(c, reply) for c, reply in zip(conversation_ids, replies, strict=True)}
        for conversation_id in [c for c, value in found.items() if value is None]:
            found[conversation_id] = await self._restore(conversation_id)
        return found

    async def _restore(self, conversation_id: str) -> StoredConversation | None:
        """MongoDB's copy, mirrored into Redis with its members' read markers."""
        conversation = await self.fetch_authoritative(conversation_id)
        if conversation is not None:
            await self._restore_read_markers(conversation_id)
            await self.mirror(conversation)
        return conversation

    async def fetch_authoritative(self, conversation_id: str) -> StoredConversation | None:
        """MongoDB's current copy, for a compare-and-set change (`replace`)."""
        doc = await self.collection.find_one({"_id": conversation_id})
        return from_doc(doc) if doc else None

    async def known_direct(self, conversation_id: str) -> StoredConversation | None:
        """A DIRECT conversation from this process's memory, else Redis's copy (then remembered).
        A DIRECT conversation's members never change, so the copy never goes stale; the send
        script still checks membership in Redis (and finds a conversation Redis lost)."""
        if (cached := self._directs.get(conversation_id)) is not None:
            self._directs.move_to_end(conversation_id)
            return cached
        found = await self.mirrored(conversation_id)
        if found is not None:
            self._remember_direct(found)
        return found

    def _remember_direct(self, conversation: StoredConversation) -> StoredConversation:
        if conversation.kind == "DIRECT":
            self._directs[conversation.id] = conversation
            if len(self._directs) > DIRECT_CACHE_SIZE:
                self._directs.popitem(last=False)
        return conversation

    async def mirrored(self, conversation_id: str) -> StoredConversation | None:
        """Redis's copy only (one round-trip); None when Redis lacks it."""
        return _mirror_of(conversation_id, await self._read_mirror(keys=_mirror_keys(conversation_id)))

    async def mirror(self, conversation: StoredConversation) -> bool:
        """Copy `conversation` into Redis unless Redis has this version or a newer one."""
        args: list[str | int] = [conversation.version, conversation.kind, conversation.title or "",
                                 conversation.created_ms, "1" if conversation.archived else "0",
                                 *_member_fields(conversation)]
        return bool(await self._mirror(
            keys=[keys.conversation_meta(conversation.id), keys.conversation_members(conversation.id)], args=args
        ))

    async def insert(self, conversation: StoredConversation) -> None:
        """A new group: MongoDB first (the authority), then the mirror."""
        await self.collection.insert_one(to_doc(conversation))
        await self.mirror(conversation)

    async def replace(self, conversation: StoredConversation, *, expected_version: int) -> bool:
        """Store `conversation` (its version one above `expected_version`) if MongoDB still has
        `expected_version`; False when another change came first (read again and retry)."""
        doc = to_doc(conversation)
        doc.pop("_id")
        doc.pop("created_at")
        result = await self.collection.update_one(
            {"_id": conversation.id, "version": expected_version}, {"$set": doc}
        )
        if result.matched_count == 0:
            return False
        await self.mirror(conversation)
        return True

    async def ensure_direct(self, a: str, b: str, now_ms: int) -> StoredConversation:
        """The DIRECT conversation of `a` and `b` (see `known_direct`), made if Redis lacks it
        (see `make_direct`); never asks MongoDB."""
        found = await self.known_direct(direct_conversation_id(a, b))
        return found if found is not None else await self.make_direct(a, b, now_ms)

    async def make_direct(self, a: str, b: str, now_ms: int) -> StoredConversation:
        """The DIRECT conversation of `a` and `b` once Redis was found without it: made in Redis
        and queued for MongoDB, in one script that returns whatever Redis then holds (a racing
        instance may have made it). MongoDB is not asked whether it had it (Redis lost it): the
        persister finds out when it writes it and restores MongoDB's state (`persist_created`)."""
        conversation_id = direct_conversation_id(a, b)
        members = new_direct(a, b, now_ms).member_ids()
        reply = await self._create_direct(
            keys=[*_mirror_keys(conversation_id), keys.outbox_stream(partition_of(conversation_id))],
            args=[conversation_id, now_ms, members[0], members[-1]],
        )
        made = _mirror_of(conversation_id, reply)
        assert made is not None  # just made (or made by a racing instance)
        return self._remember_direct(made)

    async def persist_created(self, conversation_ids: Sequence[str]) -> None:
        """Outbox entries of kind `conversation`: write conversations made in Redis to MongoDB
        ($setOnInsert: a copy MongoDB already has is never touched), then adopt MongoDB's state
        for those it had; the mirrors in one round-trip, the upserts in one bulk write."""
        ids = list(dict.fromkeys(conversation_ids))
        replies = await run_pipelined(self.redis, self._read_mirror, [(_mirror_keys(c), ()) for c in ids])
        written: list[str] = []
        upserts = []
        for conversation_id, reply in zip(ids, replies, strict=True):
            conversation = _mirror_of(conversation_id, reply)
            if conversation is None:
                log.warning("outbox conversation missing in Redis", extra={"conversation": conversation_id})
                continue
            written.append(conversation_id)
            upserts.append(UpdateOne({"_id": conversation_id}, {"$setOnInsert": to_doc(conversation)}, upsert=True))
        if not upserts:
            return
        result = await self.collection.bulk_write(upserts, ordered=False)
        inserted = set((result.upserted_ids or {}).values())  # None unacknowledged: adopting is harmless
        if had := [c for c in written if c not in inserted]:
            await self._adopt_archived(had)

    async def _adopt_archived(self, conversation_ids: Sequence[str]) -> None:
        """MongoDB had these DIRECT conversations before Redis made them (again, after losing
        them; or this entry is written a second time): MongoDB's creation time and read markers
        go back into Redis. Idempotent: a marker Redis has is kept (set since, it is the newer)."""
        async for doc in self.collection.find({"_id": {"$in": list(conversation_ids)}}):
            archived = from_doc(doc)
            if await self._adopt_direct(keys=_mirror_keys(archived.id),
                                        args=[archived.created_ms, *_member_fields(archived)]):
                await self._restore_read_markers(archived.id)
                self._directs.pop(archived.id, None)

    async def of_member(self, user_id: str) -> list[StoredConversation]:
        """From MongoDB: every conversation `user_id` is a member of."""
        cursor = self.collection.find({"members.user_id": user_id, "archived_at": None})
        return [from_doc(doc) async for doc in cursor]

    async def _restore_read_markers(self, conversation_id: str) -> None:
        markers = await self.read_markers.of_conversation(conversation_id)
        if not markers:
            return
        async with self.redis.pipeline(transaction=True) as pipe:  # both keys share a slot
            for user_id, (up_to, at_ms) in markers.items():
                pipe.hsetnx(keys.read_markers(conversation_id), user_id, up_to)
                pipe.hsetnx(keys.read_times(conversation_id), user_id, at_ms)
            await pipe.execute()

    async def member_of(self, user_id: str, conversation_ids: Sequence[str]) -> list[str]:
        """Those of `conversation_ids` that `user_id` is a member of now (one round-trip; a
        conversation Redis lacks is mirrored from MongoDB first)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for conversation_id in conversation_ids:
                pipe.hexists(keys.conversation_meta(conversation_id), "version")
                pipe.hexists(keys.conversation_members(conversation_id), user_id)
            replies = await pipe.execute()
        mine = []
        for n, conversation_id in enumerate(conversation_ids):
            mirrored, member = replies[2 * n], replies[2 * n + 1]
            if not mirrored:
                found = await self.get(conversation_id)
                member = found is not None and found.member(user_id) is not None
            if member:
                mine.append(conversation_id)
        return mine


def activity_ms(conversation: StoredConversation, latest_message_id: str | None) -> int:
    """When a conversation last saw activity: its newest message, else its creation."""
    return id_timestamp_ms(latest_message_id) if latest_message_id else conversation.created_ms
