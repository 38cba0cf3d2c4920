"""Each user's conversation list, ordered by latest activity (a sorted set per user).

Updated after each send outside the conversation's script (one key per member, in the member's
own slot) with ZADD GT, which is idempotent: the API does it at once and the persister again
for every message it archives, so a crash between the send and the update loses nothing and
repeating it changes nothing. A list is only an index: readers check membership themselves.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from redis.asyncio import Redis

from storage import keys
from storage.archive import ArchiveStore
from storage.conversations import ConversationStore, activity_ms
from storage.scripts import Command, in_one_round_trip, raise_error_replies

log = logging.getLogger(__name__)


class ConversationLists:
    def __init__(self, redis: Redis, conversations: ConversationStore, archive: ArchiveStore) -> None:
        self.redis = redis
        self.conversations = conversations
        self.archive = archive

    async def touch(self, user_ids: Iterable[str], conversation_id: str, at_ms: int) -> None:
        """Activity in `conversation_id` at `at_ms`, for each of these members."""
        await self.touch_many([(user_ids, conversation_id, at_ms)])

    async def touch_many(self, updates: Sequence[tuple[Iterable[str], str, int]]) -> None:
        """Several (members, conversation id, activity ms) updates in one round-trip."""
        commands = [command for update in updates for command in touch_commands(*update)]
        if commands:
            raise_error_replies(await in_one_round_trip(self.redis, commands))

    async def remove(self, user_id: str, conversation_id: str) -> None:
        await self.redis.zrem(keys.user_conversations(user_id), conversation_id)

    async def page(self, user_id: str, *, first: int, after: tuple[int, str] | None) -> tuple[list[str], bool]:
        """Conversation ids, most recent activity first; `after` is the previous page's last
        (ms, conversation id). Returns the ids and whether more follow."""
        await self.ensure_built(user_id)
        key = keys.user_conversations(user_id)
        top = f"{after[0]}" if after else "+inf"
        entries: list[tuple[str, float]] = []
        offset = 0
        while len(entries) < first + 1:
            batch = await self.redis.zrange(  # type: ignore[call-overload]  # BYSCORE bounds are str; types-redis: int
                key, top, "-inf", desc=True, byscore=True, withscores=True, offset=offset, num=first + 1 + 20
            )
            if not batch:
                break
            offset += len(batch)
            for conversation_id, score in batch:
                # Same ms as the cursor: only members after it in (score desc, member desc) order.
                if after and int(score) == after[0] and conversation_id >= after[1]:
                    continue
                entries.append((conversation_id, score))
        return [c for c, _ in entries[:first]], len(entries) > first

    async def activity(self, user_id: str, conversation_ids: Sequence[str]) -> list[int]:
        if not conversation_ids:  # redis-py refuses a ZMSCORE of no members
            return []
        scores = await self.redis.zmscore(keys.user_conversations(user_id), list(conversation_ids))
        return [int(s or 0) for s in scores]

    async def all_ids(self, user_id: str) -> list[str]:
        """Every conversation in the user's list (search scopes by these, after a membership check)."""
        await self.ensure_built(user_id)
        ids: list[str] = await self.redis.zrange(keys.user_conversations(user_id), 0, -1)
        return ids

    async def ensure_built(self, user_id: str) -> None:
        """Rebuild the list from MongoDB if this Redis dataset never had it (new, or lost)."""
        if await self.redis.exists(keys.user_conversations_built(user_id)):
            return
        member_of = await self.conversations.of_member(user_id)
        if member_of:
            latest = await self.archive.latest_ids([c.id for c in member_of])
            hot = await self._hot_latest([c.id for c in member_of])
            async with self.redis.pipeline(transaction=False) as pipe:
                for conversation in member_of:
                    newest = max(filter(None, (latest.get(conversation.id), hot.get(conversation.id))), default=None)
                    pipe.zadd(keys.user_conversations(user_id), {conversation.id: activity_ms(conversation, newest)},
                              gt=True)
                await pipe.execute()
            log.info("rebuilt a conversation list from MongoDB",
                     extra={"user": user_id, "conversations": len(member_of)})
        await self.redis.set(keys.user_conversations_built(user_id), "1")

    async def _hot_latest(self, conversation_ids: Sequence[str]) -> dict[str, str]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for conversation_id in conversation_ids:
                pipe.zrange(  # type: ignore[call-overload]  # BYLEX bounds are str; types-redis: int
                    keys.conversation_messages(conversation_id), "+", "-", desc=True, bylex=True, offset=0, num=1
                )
            newest = await pipe.execute()
        return {c: ids[0] for c, ids in zip(conversation_ids, newest, strict=True) if ids}


def touch_commands(user_ids: Iterable[str], conversation_id: str, at_ms: int) -> list[Command]:
    """The activity in `conversation_id` at `at_ms` for each of these members: one single-key
    ZADD GT each (idempotent, never moves a list back in time)."""
    return [("ZADD", keys.user_conversations(user_id), "GT", at_ms, conversation_id)
            for user_id in dict.fromkeys(user_ids)]
