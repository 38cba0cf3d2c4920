"""Muted conversations, per (conversation, member): MongoDB holds the record, a Redis hash per
user (`keys.user_mutes`) the copy that the conversation list and the push worker read.

A mute ends by itself at its `until`: readers compare it with the clock, so nothing has to run
at that moment (an expired entry stays, a few bytes, until the next mute or unmute of that
conversation, and a restore skips it). MongoDB is written
first, so a crash between the two writes leaves Redis behind, and the next mute or unmute (or
the restore after Redis lost its data) puts it right.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from redis.asyncio import Redis

from storage import keys

FOREVER = 0  # `until` of a mute that lasts until unmuted, in Redis


@dataclass(frozen=True, slots=True)
class Mute:
    muted: bool
    until_ms: int | None  # None while not muted, or muted until unmuted


NOT_MUTED = Mute(False, None)


def active(until_ms: int, now_ms: int) -> bool:
    return until_ms == FOREVER or until_ms > now_ms


class MuteStore:
    def __init__(self, redis: Redis, collection: AsyncCollection[dict[str, Any]]) -> None:
        self.redis = redis
        self.collection = collection

    async def create_indexes(self) -> None:
        await self.collection.create_index([("user_id", 1)])

    async def mute(self, user_id: str, conversation_id: str, until_ms: int | None) -> None:
        until = datetime.fromtimestamp(until_ms / 1000, UTC) if until_ms is not None else None
        await self.collection.update_one(
            {"_id": _doc_id(conversation_id, user_id)},
            {"$set": {"user_id": user_id, "conversation_id": conversation_id, "until": until}},
            upsert=True,
        )
        await self.redis.hset(keys.user_mutes(user_id), conversation_id, str(until_ms or FOREVER))

    async def unmute(self, user_id: str, conversation_id: str) -> None:
        await self.collection.delete_one({"_id": _doc_id(conversation_id, user_id)})
        await self.redis.hdel(keys.user_mutes(user_id), conversation_id)

    async def of(self, user_id: str, conversation_id: str, now_ms: int) -> Mute:
        raw = await self.redis.hget(keys.user_mutes(user_id), conversation_id)
        if raw is None or not active(int(raw), now_ms):
            return NOT_MUTED
        until_ms = int(raw)
        return Mute(True, None if until_ms == FOREVER else until_ms)

    async def muted_among(self, conversation_id: str, user_ids: Sequence[str], now_ms: int) -> set[str]:
        """Which of these users have the conversation muted now (one HGET per user, pipelined:
        each user's hash is in its own slot)."""
        if not user_ids:
            return set()
        async with self.redis.pipeline(transaction=False) as pipe:
            for user_id in user_ids:
                pipe.hget(keys.user_mutes(user_id), conversation_id)
            replies = await pipe.execute()
        return {u for u, raw in zip(user_ids, replies, strict=True) if raw is not None and active(int(raw), now_ms)}

    async def restore(self, now: datetime | None = None, batch_size: int = 500) -> int:
        """Copy every mute still in force from MongoDB back to Redis, never over an entry Redis
        holds (one of the hot window's restore steps: Redis lost its data). Returns how many
        were copied."""
        now = now or datetime.now(UTC)
        restored = 0
        batch: list[dict[str, Any]] = []
        async for doc in self.collection.find({"$or": [{"until": None}, {"until": {"$gt": now}}]}):
            batch.append(doc)
            if len(batch) == batch_size:
                restored += await self._restore_batch(batch)
                batch = []
        return restored + await self._restore_batch(batch)

    async def _restore_batch(self, docs: Sequence[dict[str, Any]]) -> int:
        async with self.redis.pipeline(transaction=False) as pipe:  # one single-key HSETNX each
            for doc in docs:
                until = doc["until"]
                until_ms = FOREVER if until is None else int(until.replace(tzinfo=UTC).timestamp() * 1000)
                pipe.hsetnx(keys.user_mutes(doc["user_id"]), doc["conversation_id"], str(until_ms))
            return sum(1 for reply in await pipe.execute() if reply)

def _doc_id(conversation_id: str, user_id: str) -> str:
    return f"{conversation_id}:{user_id}"
