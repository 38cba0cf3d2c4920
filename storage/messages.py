"""Messages in the Redis hot window: the atomic send, reads and history pages.

A send is ONE Lua script: idempotency check on the sender's clientId, the JSON document
(indexed by RediSearch through `MessageHot`), the conversation's and the hot window's id
sets, an entry on the outbox stream (which the persister copies to MongoDB) and the
CREATED event on both participants' channels. Either all of it happens or none.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import orjson
from redis.asyncio import Redis

from storage import keys
from storage.hot import MessageHot

CLIENT_ID_TTL_SECONDS = 7 * 24 * 3600

_SEND = """
if ARGV[3] ~= '0' then
  local existing = redis.call('GET', KEYS[1])
  if existing then return {0, existing} end
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
end
redis.call('JSON.SET', KEYS[2], '$', ARGV[2])
redis.call('ZADD', KEYS[3], 0, ARGV[1])
redis.call('ZADD', KEYS[4], 0, ARGV[1])
redis.call('XADD', KEYS[5], '*', 'id', ARGV[1])
redis.call('PUBLISH', KEYS[6], ARGV[4])
if KEYS[7] ~= KEYS[6] then redis.call('PUBLISH', KEYS[7], ARGV[4]) end
return {1, ARGV[1]}
"""


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: str
    kind: str
    sender_id: str
    receiver_id: str
    text: str
    sent_at_ms: int
    client_id: str | None = None

    @property
    def conversation(self) -> str:
        return keys.conversation_id(self.sender_id, self.receiver_id)

    def to_document(self) -> dict[str, Any]:
        """The JSON stored in Redis, in `MessageHot`'s shape."""
        return {
            "pk": self.id,
            **{k: v for k, v in asdict(self).items() if k != "id"},
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
        )


@dataclass(frozen=True, slots=True)
class MessageEventPayload:
    type: str
    message: StoredMessage

    def encode(self) -> bytes:
        return orjson.dumps({"type": self.type, "message": self.message.to_document()})

    @classmethod
    def decode(cls, raw: bytes | str) -> "MessageEventPayload":
        data = orjson.loads(raw)
        return cls(type=data["type"], message=StoredMessage.from_document(data["message"]))


def message_key(message_id: str) -> str:
    return MessageHot.make_primary_key(message_id)


class MessageStore:
    """Hot-window reads and the atomic send, on one Redis client."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._send = redis.register_script(_SEND)

    async def send(self, message: StoredMessage) -> tuple[StoredMessage, bool]:
        """Store, enqueue for MongoDB and publish `message`; returns (message, created).

        With a clientId this sender already used, nothing is written and the first message
        is returned with created=False.
        """
        event = MessageEventPayload("CREATED", message).encode()
        created, message_id = await self._send(
            keys=[
                keys.client_id(message.sender_id, message.client_id or ""),
                message_key(message.id),
                keys.conversation_messages(message.conversation),
                keys.hot_messages(),
                keys.OUTBOX_STREAM,
                keys.user_events(message.sender_id),
                keys.user_events(message.receiver_id),
            ],
            args=[
                message.id,
                orjson.dumps(message.to_document()),
                CLIENT_ID_TTL_SECONDS if message.client_id else 0,
                event,
            ],
        )
        if created:
            return message, True
        existing = await self.get(message_id)
        if existing is None:  # the first message has left the hot window
            raise LookupError(message_id)
        return existing, False

    async def get(self, message_id: str) -> StoredMessage | None:
        found = await self.get_many([message_id])
        return found[0] if found else None

    async def get_many(self, message_ids: list[str]) -> list[StoredMessage]:
        """The messages that are in Redis, in the order asked."""
        if not message_ids:
            return []
        raw = await self.redis.json().mget([message_key(i) for i in message_ids], "$")
        return [StoredMessage.from_document(r[0]) for r in raw if r]

    async def page_ids(self, conversation: str, *, before: str | None, limit: int) -> list[str]:
        """Up to `limit` hot ids of a conversation older than `before`, newest first."""
        upper = f"({before}" if before else "+"
        return await self.redis.zrange(
            keys.conversation_messages(conversation), upper, "-", desc=True, bylex=True,
            offset=0, num=limit,
        )
