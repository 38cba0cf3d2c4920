"""Messages wherever they live: the Redis hot window first, the MongoDB archive behind it.

A send is ONE Lua script: idempotency checks (the message id, the sender's clientId), the
JSON document (indexed by RediSearch through `MessageHot`), the conversation's and the hot
window's id sets, an entry on the outbox stream (which the persister copies to MongoDB) and
the CREATED event on both participants' channels. Either all of it happens or none.
"""

from __future__ import annotations

import logging

import orjson
from redis.asyncio import Redis

from storage import keys
from storage.archive import ArchiveStore
from storage.connections import json_commands
from storage.hot_window import HotWindow
from storage.records import MessageEventPayload, StoredMessage

log = logging.getLogger(__name__)

CLIENT_ID_TTL_SECONDS = 7 * 24 * 3600

# KEYS: clientId key, document, conversation set, hot set, outbox, sender channel,
#       receiver channel, transcription queue, sender's and receiver's conversation lists,
#       receiver's unread counts, the ids the sender sent in the conversation (markRead counts
#       unread with ZLEXCOUNT on it). ARGV: id, document JSON, clientId TTL (0 = no clientId),
#       CREATED event, '1' to queue a transcription job, sent ms, sender id, receiver id.
# The document already there means a re-run (redis-py retries after a lost reply): no side effect twice.
_SEND = """
if redis.call('EXISTS', KEYS[2]) == 1 then return {1, ARGV[1]} end
if ARGV[3] ~= '0' then
  local existing = redis.call('GET', KEYS[1])
  if existing then return {0, existing} end
end
redis.call('JSON.SET', KEYS[2], '$', ARGV[2])
redis.call('ZADD', KEYS[3], 0, ARGV[1])
redis.call('ZADD', KEYS[4], 0, ARGV[1])
redis.call('ZADD', KEYS[12], 0, ARGV[1])
redis.call('XADD', KEYS[5], '*', 'id', ARGV[1])
if ARGV[5] == '1' then redis.call('XADD', KEYS[8], '*', 'id', ARGV[1], 'attempt', '1') end
redis.call('ZADD', KEYS[9], 'GT', ARGV[6], ARGV[8])
redis.call('ZADD', KEYS[10], 'GT', ARGV[6], ARGV[7])
if ARGV[7] ~= ARGV[8] then redis.call('HINCRBY', KEYS[11], ARGV[7], 1) end
if ARGV[3] ~= '0' then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3]) end
redis.call('PUBLISH', KEYS[6], ARGV[4])
if KEYS[7] ~= KEYS[6] then redis.call('PUBLISH', KEYS[7], ARGV[4]) end
return {1, ARGV[1]}
"""

# An update of an existing message (a transcript landed, a retry was asked for): replace the
# document only if it still exists, enqueue it for MongoDB, publish UPDATED to both sides.
# KEYS: document, outbox, sender channel, receiver channel, transcription queue.
# ARGV: id, document JSON, UPDATED event, '1' to queue a transcription job.
_UPDATE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('JSON.SET', KEYS[1], '$', ARGV[2])
redis.call('XADD', KEYS[2], '*', 'id', ARGV[1])
if ARGV[4] == '1' then redis.call('XADD', KEYS[5], '*', 'id', ARGV[1], 'attempt', '1') end
redis.call('PUBLISH', KEYS[3], ARGV[3])
if KEYS[4] ~= KEYS[3] then redis.call('PUBLISH', KEYS[4], ARGV[3]) end
return 1
"""


class MessageStore:
    """The atomic send and every message read and update: Redis first, MongoDB behind it."""

    def __init__(self, redis: Redis, archive: ArchiveStore, hot_window: HotWindow) -> None:
        self.redis = redis
        self.archive = archive
        self.hot_window = hot_window
        self._json = json_commands(redis)
        self._send = redis.register_script(_SEND)
        self._update = redis.register_script(_UPDATE)

    async def send(self, message: StoredMessage) -> tuple[StoredMessage, bool]:
        """Store, enqueue for MongoDB and publish `message`; returns (message, created).

        With a clientId this sender already used, nothing is written and the first message
        (wherever it lives now) is returned with created=False. Idempotent per message id: a
        re-run of the same send (a retry after a lost reply) returns created=True and changes nothing.
        """
        document = message.to_document()
        event = MessageEventPayload("CREATED", message).encode(document)
        created, message_id = await self._send(
            keys=[
                keys.client_id(message.sender_id, message.client_id or ""),
                keys.message_key(message.id),
                keys.conversation_messages(message.conversation),
                keys.hot_messages(),
                keys.OUTBOX_STREAM,
                keys.user_events(message.sender_id),
                keys.user_events(message.receiver_id),
                keys.TRANSCRIPTION_STREAM,
                keys.conversations(message.sender_id),
                keys.conversations(message.receiver_id),
                keys.unread_counts(message.receiver_id),
                keys.conversation_sent(message.conversation, message.sender_id),
            ],
            args=[
                message.id,
                orjson.dumps(document),
                CLIENT_ID_TTL_SECONDS if message.client_id else 0,
                event,
                "1" if message.transcription_status == "PENDING" else "0",
                message.sent_at_ms,
                message.sender_id,
                message.receiver_id,
            ],
        )
        if created:
            return message, True
        existing = await self.find(message_id)
        if existing is None:  # the clientId key outlived its message: impossible unless data was lost
            raise LookupError(f"message {message_id} of a clientId is missing")
        return existing, False

    async def update(self, message: StoredMessage, *, queue_transcription: bool = False) -> None:
        """Replace a message wherever it lives and publish UPDATED to both participants: in the
        hot window atomically (persisted through the outbox), or in MongoDB when it already left
        Redis. The caller passes the new state with `rev` already bumped (`next_revision`)."""
        document = message.to_document()
        event = MessageEventPayload("UPDATED", message).encode(document)
        updated = await self._update(
            keys=[
                keys.message_key(message.id),
                keys.OUTBOX_STREAM,
                keys.user_events(message.sender_id),
                keys.user_events(message.receiver_id),
                keys.TRANSCRIPTION_STREAM,
            ],
            args=[message.id, orjson.dumps(document), event, "1" if queue_transcription else "0"],
        )
        if updated:
            return
        log.info("updating an archived message", extra={"message_id": message.id})
        await self.archive.upsert([message])
        async with self.redis.pipeline(transaction=True) as pipe:
            if queue_transcription:
                pipe.xadd(keys.TRANSCRIPTION_STREAM, {"id": message.id, "attempt": "1"})
            for user_id in {message.sender_id, message.receiver_id}:
                pipe.publish(keys.user_events(user_id), event)
            await pipe.execute()

    async def by_client_id(self, sender_id: str, client_id: str) -> StoredMessage | None:
        """The message a sender's clientId already created, if any."""
        message_id = await self.redis.get(keys.client_id(sender_id, client_id))
        return await self.find(message_id) if message_id else None

    async def find(self, message_id: str) -> StoredMessage | None:
        """From the hot window, else from the archive."""
        hot = await self.get_hot([message_id])
        return hot[0] if hot else await self.archive.get(message_id)

    async def get_hot(self, message_ids: list[str]) -> list[StoredMessage]:
        """The messages that are in Redis, in the order asked."""
        if not message_ids:
            return []
        raw = await self._json.mget([keys.message_key(i) for i in message_ids], "$")
        return [StoredMessage.from_document(r[0]) for r in raw if r]

    async def page(self, conversation: str, *, before: str | None, limit: int) -> list[StoredMessage]:
        """Up to `limit` messages older than id `before`, newest first: Redis, then MongoDB.

        Redis always holds the newest part of a conversation, so continuing in MongoDB strictly
        below the oldest id Redis returned can neither skip nor repeat a message. MongoDB is
        asked only for conversations marked as having archive-only messages, so recent ones
        read from Redis alone (and stay readable while MongoDB is down).
        """
        upper = f"({before}" if before else "+"
        ids = await self.redis.zrange(  # type: ignore[call-overload]  # BYLEX bounds are str; types-redis: int
            keys.conversation_messages(conversation), upper, "-", desc=True, bylex=True, offset=0, num=limit,
        )
        newest_first = await self.get_hot(ids)
        if len(newest_first) < limit and await self.hot_window.has_archived_only_messages(conversation):
            floor = newest_first[-1].id if newest_first else before
            newest_first += await self.archive.page(conversation, before=floor, limit=limit - len(newest_first))
        return newest_first

    async def latest(self, conversations: list[str]) -> dict[str, StoredMessage]:
        """The newest message of each conversation (that has one): one Redis round-trip for
        the hot ones, the archive for the rest."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for conversation in conversations:
                pipe.zrange(  # type: ignore[call-overload]  # BYLEX bounds are str; types-redis: int
                    keys.conversation_messages(conversation), "+", "-", desc=True, bylex=True, offset=0, num=1
                )
            newest = await pipe.execute()
        hot = {m.id: m for m in await self.get_hot([ids[0] for ids in newest if ids])}
        found: dict[str, StoredMessage] = {}
        for conversation, ids in zip(conversations, newest, strict=True):
            if ids and ids[0] in hot:
                found[conversation] = hot[ids[0]]
            elif archived := await self.archive.page(conversation, before=None, limit=1):
                found[conversation] = archived[0]
        return found
