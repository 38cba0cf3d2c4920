"""Rebuilding a user's conversation state in Redis from MongoDB (after Redis lost its data)."""

from __future__ import annotations

import logging

from redis.asyncio import Redis

from storage import keys
from storage.archive import ArchiveStore
from storage.ids import id_timestamp_ms
from storage.read_markers import ReadMarkerArchive

log = logging.getLogger(__name__)


class ConversationRebuilder:
    def __init__(self, redis: Redis, archive: ArchiveStore, read_markers: ReadMarkerArchive) -> None:
        self.redis = redis
        self.archive = archive
        self.read_markers = read_markers

    async def rebuild(self, user_id: str) -> None:
        """The user's conversation list, unread counts and read markers, from the archive.
        Never lowers what Redis counted since it lost its data."""
        latest: dict[str, str] = {}
        for conversation, last in (await self.archive.latest_per_conversation(user_id)).items():
            a, _, b = conversation.partition(":")
            latest[b if a == user_id else a] = last
        if not latest:
            return
        markers = await self.read_markers.of_user(user_id)
        partners = list(latest)
        counted_since_loss = await self.redis.hmget(keys.unread_counts(user_id), partners)
        async with self.redis.pipeline(transaction=False) as pipe:
            for partner, since_loss in zip(partners, counted_since_loss, strict=True):
                pipe.zadd(keys.conversations(user_id), {partner: id_timestamp_ms(latest[partner])}, gt=True)
                marker = markers.get(partner)
                unread = await self.archive.count_from(
                    keys.conversation_id(user_id, partner), sender_id=partner,
                    after=marker["up_to"] if marker else "",
                ) if partner != user_id else 0
                pipe.hset(keys.unread_counts(user_id), partner, max(unread, int(since_loss or 0)))
                if marker:
                    pipe.hsetnx(keys.read_markers(user_id), partner, marker["up_to"])
                    pipe.hsetnx(keys.read_times(user_id), partner, int(marker["at"].timestamp() * 1000))
            await pipe.execute()
        log.info("rebuilt conversations from MongoDB", extra={"user": user_id, "conversations": len(latest)})
