"""Messages in the Redis hot window: the atomic send, reads and history pages.

A send is ONE Lua script: idempotency check on the sender's clientId, the JSON document
(indexed by RediSearch through `MessageHot`), the conversation's and the hot window's id
sets, an entry on the outbox stream (which the persister copies to MongoDB) and the
CREATED event on both participants' channels. Either all of it happens or none.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from typing import Any

import orjson
from redis.asyncio import Redis

from storage import keys
from storage.connections import json_commands
from storage.hot import MessageHot

CLIENT_ID_TTL_SECONDS = 7 * 24 * 3600

# KEYS: clientId key, document, conversation set, hot set, outbox, sender channel,
#       receiver channel, transcription queue, sender's and receiver's conversation lists,
#       receiver's unread counts. ARGV: id, document JSON, clientId TTL (0 = no clientId),
#       CREATED event, '1' to queue a transcription job, sent ms, sender id, receiver id.
_SEND = """
if ARGV[3] ~= '0' then
  local existing = redis.call('GET', KEYS[1])
  if existing then return {0, existing} end
end
redis.call('JSON.SET', KEYS[2], '$', ARGV[2])
redis.call('ZADD', KEYS[3], 0, ARGV[1])
redis.call('ZADD', KEYS[4], 0, ARGV[1])
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


@dataclass(frozen=True, slots=True)
class StoredAudio:
    id: str
    mime_type: str
    size_bytes: int
    duration_seconds: float | None


@dataclass(frozen=True, slots=True)
class StoredWord:
    word: str
    start: float
    end: float
    confidence: float | None = None


@dataclass(frozen=True, slots=True)
class StoredTranscript:
    text: str
    engine: str
    confidence: float | None = None
    language: str | None = None
    words: tuple[StoredWord, ...] = ()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "StoredTranscript":
        return cls(
            text=data["text"],
            engine=data["engine"],
            confidence=data.get("confidence"),
            language=data.get("language"),
            words=tuple(StoredWord(**w) for w in data.get("words") or ()),
        )


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: str
    kind: str
    sender_id: str
    receiver_id: str
    text: str
    sent_at_ms: int
    client_id: str | None = None
    audio: StoredAudio | None = None  # VOICE only
    transcription_status: str | None = None  # VOICE only: PENDING, DONE, FAILED
    transcript: StoredTranscript | None = None  # VOICE only, once DONE
    rev: int = 0  # bumped by every update; trimming keeps a message until MongoDB has this rev

    @property
    def conversation(self) -> str:
        return keys.conversation_id(self.sender_id, self.receiver_id)

    def to_document(self) -> dict[str, Any]:
        """The JSON stored in Redis, in `MessageHot`'s shape. Built field by field: on every send,
        `dataclasses.asdict` (a recursive deep copy) cost more than the rest of this."""
        return {
            "pk": self.id,
            "kind": self.kind,
            "sender_id": self.sender_id,
            "receiver_id": self.receiver_id,
            "text": self.text,
            "sent_at_ms": self.sent_at_ms,
            "client_id": self.client_id,
            "audio": asdict(self.audio) if self.audio else None,
            "transcription_status": self.transcription_status,
            "transcript": asdict(self.transcript) if self.transcript else None,
            "rev": self.rev,
            "participants": sorted({self.sender_id, self.receiver_id}),
            "conversation": self.conversation,
        }

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> "StoredMessage":
        return cls(
            id=doc["pk"],
            kind=doc["kind"],
            sender_id=doc["sender_id"],
            receiver_id=doc["receiver_id"],
            text=doc["text"],
            sent_at_ms=int(doc["sent_at_ms"]),
            client_id=doc.get("client_id"),
            audio=StoredAudio(**doc["audio"]) if doc.get("audio") else None,
            transcription_status=doc.get("transcription_status"),
            transcript=StoredTranscript.from_dict(doc["transcript"]) if doc.get("transcript") else None,
            rev=int(doc.get("rev", 0)),
        )


@dataclass(frozen=True, slots=True)
class MessageEventPayload:
    type: str
    message: StoredMessage

    def encode(self, document: dict[str, Any] | None = None) -> bytes:
        """`document`: the message's `to_document()`, when the caller has built it already."""
        return orjson.dumps({"type": self.type, "message": document or self.message.to_document()})

    @classmethod
    def decode(cls, raw: bytes | str) -> "MessageEventPayload":
        data = orjson.loads(raw)
        return cls(type=data["type"], message=StoredMessage.from_document(data["message"]))


class FirstMessageNotHot(LookupError):
    """A clientId's first message exists but has left the hot window (look in the archive)."""

    def __init__(self, message_id: str) -> None:
        super().__init__(message_id)
        self.message_id = message_id


def next_revision(message: StoredMessage, **changes: Any) -> StoredMessage:
    """`message` with `changes` and the next revision number."""
    return dataclasses.replace(message, rev=message.rev + 1, **changes)


def message_key(message_id: str) -> str:
    return MessageHot.make_primary_key(message_id)


class MessageStore:
    """Hot-window reads and the atomic send, on one Redis client."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._json = json_commands(redis)
        self._send = redis.register_script(_SEND)
        self._update = redis.register_script(_UPDATE)

    async def send(self, message: StoredMessage) -> tuple[StoredMessage, bool]:
        """Store, enqueue for MongoDB and publish `message`; returns (message, created).

        With a clientId this sender already used, nothing is written and the first message
        is returned with created=False.
        """
        document = message.to_document()
        event = MessageEventPayload("CREATED", message).encode(document)
        created, message_id = await self._send(
            keys=[
                keys.client_id(message.sender_id, message.client_id or ""),
                message_key(message.id),
                keys.conversation_messages(message.conversation),
                keys.hot_messages(),
                keys.OUTBOX_STREAM,
                keys.user_events(message.sender_id),
                keys.user_events(message.receiver_id),
                keys.TRANSCRIPTION_STREAM,
                keys.conversations(message.sender_id),
                keys.conversations(message.receiver_id),
                keys.unread_counts(message.receiver_id),
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
        existing = await self.get(message_id)
        if existing is None:
            raise FirstMessageNotHot(message_id)
        return existing, False

    async def update(self, message: StoredMessage, *, queue_transcription: bool = False) -> bool:
        """Replace a hot message, persist it and publish UPDATED; False if it is not hot.
        The caller passes the new state with `rev` already bumped (see `next_revision`)."""
        document = message.to_document()
        updated = await self._update(
            keys=[
                message_key(message.id),
                keys.OUTBOX_STREAM,
                keys.user_events(message.sender_id),
                keys.user_events(message.receiver_id),
                keys.TRANSCRIPTION_STREAM,
            ],
            args=[
                message.id,
                orjson.dumps(document),
                MessageEventPayload("UPDATED", message).encode(document),
                "1" if queue_transcription else "0",
            ],
        )
        return bool(updated)

    async def client_message_id(self, sender_id: str, client_id: str) -> str | None:
        """The message a sender's clientId already created, if any."""
        return await self.redis.get(keys.client_id(sender_id, client_id))

    async def get(self, message_id: str) -> StoredMessage | None:
        found = await self.get_many([message_id])
        return found[0] if found else None

    async def get_many(self, message_ids: list[str]) -> list[StoredMessage]:
        """The messages that are in Redis, in the order asked."""
        if not message_ids:
            return []
        raw = await self._json.mget([message_key(i) for i in message_ids], "$")
        return [StoredMessage.from_document(r[0]) for r in raw if r]

    async def page_ids(self, conversation: str, *, before: str | None, limit: int) -> list[str]:
        """Up to `limit` hot ids of a conversation older than `before`, newest first."""
        upper = f"({before}" if before else "+"
        return await self.redis.zrange(
            keys.conversation_messages(conversation), upper, "-", desc=True, bylex=True,
            offset=0, num=limit,
        )
