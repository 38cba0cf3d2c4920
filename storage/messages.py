"""Messages wherever they live: the Redis hot window first, the MongoDB archive behind it.

A send is ONE Lua script over the keys of the message's conversation: the membership check,
the JSON document (indexed by RediSearch through `MessageHot`), the conversation's id sets, an
entry on the outbox stream (which the persister copies to MongoDB) and the CREATED event on
every member's channel, and each member's conversation list (`storage.conversation_lists`).
Either all of it happens or none.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence

import orjson
from redis.asyncio import Redis

from storage import keys
from storage.archive import ArchiveStore, Repeat
from storage.hot_window import HotWindow, hot_member
from storage.ids import first_id_at, id_timestamp_ms
from storage.message_changes import MessageChanges
from storage.records import MessageEventPayload, StoredMessage, tombstone
from storage.scripts import run_commands
from storage.slots import PARTITIONS, partition_of

log = logging.getLogger(__name__)

CLIENT_ID_TTL_SECONDS = 7 * 24 * 3600
_USER_CHANNEL = keys.user_events("")

SENT, ALREADY_SENT, NOT_A_MEMBER, NOT_MIRRORED = 1, 2, 0, -1

# KEYS: document, conversation's ids, sender's ids in it, members, meta, and its partition's hot
#       set, outbox, transcription queue and push queue, then the conversation lists of the
#       members the caller read (every key in the conversation's partition: one slot).
# ARGV: id, document JSON, CREATED event, '1' to queue a transcription job, sender, channel
#       prefix, conversation id, hot-set member, '1' to queue a Web Push job (push/worker.py),
#       sent ms, then the member of each list key (a list is moved only while its user is a member).
# Returns {status, member ids...}. The document already there means a re-run (redis-py retries
# after a lost reply, or a clientId retry): no side effect twice.
_SEND = """
if redis.call('HEXISTS', KEYS[5], 'version') == 0 then return {-1} end
local members = redis.call('HKEYS', KEYS[4])
if redis.call('EXISTS', KEYS[1]) == 1 then return {2, unpack(members)} end
if redis.call('HEXISTS', KEYS[4], ARGV[5]) == 0 then return {0} end
redis.call('JSON.SET', KEYS[1], '$', ARGV[2])
redis.call('ZADD', KEYS[2], 0, ARGV[1])
redis.call('ZADD', KEYS[3], 0, ARGV[1])
redis.call('ZADD', KEYS[6], 0, ARGV[8])
redis.call('XADD', KEYS[7], '*', 'id', ARGV[1], 'conversation', ARGV[7])
if ARGV[4] == '1' then redis.call('XADD', KEYS[8], '*', 'id', ARGV[1], 'conversation', ARGV[7], 'attempt', '1') end
if ARGV[9] == '1' then redis.call('XADD', KEYS[9], '*', 'id', ARGV[1], 'conversation', ARGV[7]) end
local is_member = {}
for _, member in ipairs(members) do
  redis.call('PUBLISH', ARGV[6] .. member, ARGV[3])
  is_member[member] = true
end
for i = 10, #KEYS do
  if is_member[ARGV[i + 1]] then redis.call('ZADD', KEYS[i], 'GT', ARGV[10], ARGV[7]) end
end
return {1, unpack(members)}
"""

# A repeat of an archived clientId leaves the hot window (it never reaches MongoDB, so it would
# hold the trimming back): only if it is still there; the members, told CREATED, are told DELETED.
# KEYS: document, conversation's ids, sender's ids in it, its partition's hot set, members (one
# slot). ARGV: id, hot-set member, DELETED event, channel prefix. Returns 1 if removed.
_WITHDRAW = """
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[2])
for _, member in ipairs(redis.call('HKEYS', KEYS[5])) do redis.call('PUBLISH', ARGV[4] .. member, ARGV[3]) end
return 1
"""


@dataclasses.dataclass(frozen=True, slots=True)
class SendOutcome:
    status: int  # SENT, ALREADY_SENT, NOT_A_MEMBER, NOT_MIRRORED
    message: StoredMessage | None  # the message stored (the first one, for a repeated clientId)
    member_ids: tuple[str, ...] = ()


class MessageStore:
    """The atomic send and every message read and update: Redis first, MongoDB behind it."""

    def __init__(self, redis: Redis, archive: ArchiveStore, hot_window: HotWindow, *, push_queue: bool = False) -> None:
        self.redis = redis
        self.push_queue = "1" if push_queue else "0"  # new messages queued for Web Push
        self.archive = archive
        self.hot_window = hot_window
        self._send = redis.register_script(_SEND)
        # Every change after the send goes through `changes` (revision-checked, search entry kept).
        self.changes = MessageChanges(redis, archive, hot_window.archive_index, hot_window.hot_copies,
                                      self._find_in)
        self._withdraw = redis.register_script(_WITHDRAW)

    async def reserve_client_id(self, message: StoredMessage) -> StoredMessage | str:
        """Reserve the sender's clientId for `message`. Returns `message` when it is ours (or was
        reserved for it before), the first message when it was sent, or the id it was reserved
        for when that send has not landed (still running, or its server died): the caller then
        sends under that id, which the send script makes idempotent."""
        assert message.client_id is not None
        key = keys.client_id(message.sender_id, message.client_id)
        if await self.redis.set(key, message.id, nx=True, ex=CLIENT_ID_TTL_SECONDS):
            return message
        reserved: str | None = await self.redis.get(key)
        if reserved is None or reserved == message.id:
            return message
        return reserved

    async def send(self, message: StoredMessage, *, members: Sequence[str]) -> SendOutcome:
        """Store, enqueue for MongoDB and publish `message` if its sender is a member, and move the
        conversation lists of `members` (as the caller read them; those no longer members are
        skipped). The returned member ids are the script's: a member added since is among them."""
        document = message.to_document()
        event = MessageEventPayload("CREATED", message).encode(document)
        conversation = message.conversation_id
        partition = partition_of(conversation)
        members = list(dict.fromkeys(members))  # notes to yourself: a pair of one
        script_keys = [
            keys.message_key(conversation, message.id),
            keys.conversation_messages(conversation),
            keys.conversation_sent(conversation, message.sender_id),
            keys.conversation_members(conversation),
            keys.conversation_meta(conversation),
            keys.hot_messages(partition),
            keys.outbox_stream(partition),
            keys.transcription_stream(partition),
            keys.push_stream(partition),
            *keys.conversation_lists_of(conversation, members),
        ]
        args: list[str | bytes | int] = [
            message.id, orjson.dumps(document), event,
            "1" if message.transcription_status == "PENDING" else "0",
            message.sender_id, _USER_CHANNEL, conversation, hot_member(message), self.push_queue,
            message.sent_at_ms, *members,
        ]
        status, *member_ids = await self._send(keys=script_keys, args=args)
        status = int(status)
        if status == ALREADY_SENT:
            return SendOutcome(status, await self.find(message.id, conversation_id=conversation), tuple(member_ids))
        return SendOutcome(status, message if status == SENT else None, tuple(member_ids))

    async def update(self, message: StoredMessage, *, queue_transcription: bool = False) -> bool:
        """Replace a message wherever it lives and publish UPDATED to every member, if nothing
        changed it since the state `message` was made from: the caller passes the new state
        with `rev` already bumped (`next_revision`). False when it lost that race (or the message
        is gone); `changes.change` decides again instead."""
        return await self.changes.apply(message.rev - 1, message, queue_transcription=queue_transcription)

    async def restore_client_ids(self) -> int:
        """Reserve again, for the rest of their TTL, the clientIds of the archived messages sent
        in the last CLIENT_ID_TTL_SECONDS (Redis lost the reservations), never over one Redis
        holds; one of its restore steps. A retry after the loss then finds the first message.
        Returns how many were reserved."""
        now_ms = int(time.time() * 1000)
        restored = 0
        async for batch in self.archive.client_ids_since(first_id_at(now_ms - CLIENT_ID_TTL_SECONDS * 1000)):
            async with self.redis.pipeline(transaction=False) as pipe:  # one single-key SET each
                for sender_id, client_id, message_id, sent_ms in batch:
                    left_ms = sent_ms + CLIENT_ID_TTL_SECONDS * 1000 - now_ms
                    if left_ms > 0:
                        pipe.set(keys.client_id(sender_id, client_id), message_id, nx=True, px=left_ms)
                restored += sum(1 for reply in await pipe.execute() if reply)
        if restored:
            log.warning("reserved clientIds again that Redis had lost", extra={"restored": restored})
        return restored

    async def withdraw_repeats(self, repeats: Sequence[Repeat]) -> None:
        """Settle each message the archive refused because its clientId names an archived first
        message (sent again after the reservation expired or Redis lost it): the first one
        stays (acknowledged first, already delivered and archived), the clientId is reserved for
        it again, so every later retry returns it, then the repeat leaves Redis and the members
        are told DELETED (they were told CREATED). Idempotent."""
        for repeat, first_id in repeats:
            assert repeat.client_id is not None
            log.warning("a clientId repeat was withdrawn: the archived first message stays",
                        extra={"message_id": repeat.id, "first_id": first_id})
            await self.redis.set(keys.client_id(repeat.sender_id, repeat.client_id), first_id,
                                 ex=CLIENT_ID_TTL_SECONDS)  # first: a later retry finds the first message
            conversation = repeat.conversation_id
            gone = MessageEventPayload("DELETED", tombstone(repeat, int(time.time() * 1000))).encode()
            await self._withdraw(
                keys=[keys.message_key(conversation, repeat.id), keys.conversation_messages(conversation),
                      keys.conversation_sent(conversation, repeat.sender_id),
                      keys.hot_messages(partition_of(conversation)), keys.conversation_members(conversation)],
                args=[repeat.id, hot_member(repeat), gone, _USER_CHANNEL],
            )

    async def requeue_lost_transcriptions(self) -> int:
        """Queue a job again for every voice message MongoDB has as PENDING that no
        transcription stream or retry set holds (Redis lost them); one of its restore steps.
        A job that turns out to be a duplicate is harmless: the worker skips a message that is
        no longer PENDING. Returns how many were queued."""
        held = await self._queued_transcriptions()
        queued = 0
        async for batch in self.archive.pending_transcriptions():
            async with self.redis.pipeline(transaction=False) as pipe:  # one single-key XADD each
                for message_id, conversation_id in batch:
                    if message_id not in held:
                        pipe.xadd(keys.transcription_stream(partition_of(conversation_id)),
                                  {"id": message_id, "conversation": conversation_id, "attempt": "1"})
                        queued += 1
                await pipe.execute()
        if queued:
            log.warning("re-queued transcriptions Redis had lost", extra={"queued": queued})
        return queued

    async def _queued_transcriptions(self) -> set[str]:
        """The message ids of every transcription job in Redis: each partition's stream (done
        jobs are deleted from it) and retry set, one single-key read each."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for partition in range(PARTITIONS):
                pipe.xrange(keys.transcription_stream(partition))
                pipe.zrange(keys.transcription_delayed(partition), 0, -1)
            replies = await pipe.execute()
        held: set[str] = set()
        for stream, delayed in zip(replies[::2], replies[1::2], strict=True):
            held.update(fields["id"] for _, fields in stream if "id" in fields)
            held.update(job.split(":", 1)[0] for job in delayed)
        return held

    async def find(self, message_id: str, *, conversation_id: str | None = None) -> StoredMessage | None:
        """From the hot window, else from the archive. Without `conversation_id`, every
        partition's key is tried in one round-trip."""
        candidates = ([keys.message_key(conversation_id, message_id)] if conversation_id is not None
                      else keys.message_keys_anywhere(message_id))
        hot = await self.get_hot_keys(candidates)
        return hot[0] if hot else await self.archive.get(message_id)

    async def find_many(self, refs: Sequence[tuple[str, str]]) -> dict[str, StoredMessage]:
        """Message id -> message, for the (conversation id, message id) pairs found: the hot
        ones in one read per partition, the rest in one archive read. A message found in
        another conversation than the one named is left out."""
        found = {m.id: m for m in await self.get_hot_keys([keys.message_key(c, i) for c, i in refs])}
        missing = [i for _, i in refs if i not in found]
        if missing:
            found.update(await self.archive.get_many(missing))
        conversation_of = {i: c for c, i in refs}
        return {i: m for i, m in found.items() if m.conversation_id == conversation_of.get(i)}

    async def _find_in(self, message_id: str, conversation_id: str) -> StoredMessage | None:
        return await self.find(message_id, conversation_id=conversation_id)

    async def get_hot(self, conversation_id: str, message_ids: Sequence[str]) -> list[StoredMessage]:
        """The messages of one conversation that are in Redis, in the order asked."""
        return await self.get_hot_keys([keys.message_key(conversation_id, i) for i in message_ids])

    async def get_hot_keys(self, message_keys: Sequence[str]) -> list[StoredMessage]:
        """The messages at these keys that are in Redis, in the order asked."""
        if not message_keys:
            return []
        by_slot: dict[str, list[str]] = {}  # one JSON.MGET per partition: its keys share a slot
        for key in message_keys:
            by_slot.setdefault(key[key.index("{"):key.index("}")], []).append(key)
        replies = await run_commands(self.redis, [("JSON.MGET", *ks, "$") for ks in by_slot.values()])
        found = dict(zip((k for ks in by_slot.values() for k in ks), (r for rs in replies for r in rs), strict=True))
        return [StoredMessage.from_document(orjson.loads(raw)[0]) for key in message_keys if (raw := found[key])]

    async def page(self, conversation_id: str, *, before: str | None, limit: int) -> list[StoredMessage]:
        """Up to `limit` messages older than id `before`, newest first: Redis, then MongoDB.

        Redis always holds the newest part of a conversation, so continuing in MongoDB strictly
        below the oldest id Redis returned can neither skip nor repeat a message. MongoDB is
        asked only for conversations marked as having archive-only messages, so recent ones
        read from Redis alone (and stay readable while MongoDB is down).
        """
        upper = f"({before}" if before else "+"
        ids = await self.redis.zrange(  # type: ignore[call-overload]  # BYLEX bounds are str; types-redis: int
            keys.conversation_messages(conversation_id), upper, "-", desc=True, bylex=True, offset=0, num=limit,
        )
        newest_first = await self.get_hot(conversation_id, ids)
        if len(newest_first) < limit and await self.hot_window.has_archived_only_messages(conversation_id):
            floor = newest_first[-1].id if newest_first else before
            newest_first += await self.archive.page(conversation_id, before=floor, limit=limit - len(newest_first))
        return newest_first

    async def latest(self, conversation_ids: Sequence[str]) -> dict[str, StoredMessage]:
        """The newest message of each conversation (that has one): one Redis round-trip for
        the hot ones, the archive for the rest."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for conversation_id in conversation_ids:
                pipe.zrange(  # type: ignore[call-overload]  # BYLEX bounds are str; types-redis: int
                    keys.conversation_messages(conversation_id), "+", "-", desc=True, bylex=True, offset=0, num=1
                )
            newest = await pipe.execute()
        hot_keys = [keys.message_key(c, ids[0]) for c, ids in zip(conversation_ids, newest, strict=True) if ids]
        hot = {m.id: m for m in await self.get_hot_keys(hot_keys)}
        found: dict[str, StoredMessage] = {}
        for conversation_id, ids in zip(conversation_ids, newest, strict=True):
            if ids and ids[0] in hot:
                found[conversation_id] = hot[ids[0]]
            elif await self.hot_window.has_archived_only_messages(conversation_id) and (
                archived := await self.archive.page(conversation_id, before=None, limit=1)
            ):
                found[conversation_id] = archived[0]
        return found


def with_id(message: StoredMessage, message_id: str) -> StoredMessage:
    """`message` under another id (the one its clientId was reserved for)."""
    return dataclasses.replace(message, id=message_id, sent_at_ms=id_timestamp_ms(message_id))
