"""Each user's conversation list, ordered by latest activity.

A user's entries live in their conversations' partitions (one sorted set per user and
partition, `keys.conversation_list`), in the conversation's slot: the send script moves every
member's entry in the same atomic step as the message. Group changes add and remove entries
right after the membership changed; a crash in between is mended by the group's next message
(its script adds a missing entry) or the member's next listing (which drops a stale one). A
page merges the user's partitions. A list is only an index: readers check membership themselves.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Iterable, Sequence

from redis.asyncio import Redis

from storage import keys
from storage.archive import ArchiveStore
from storage.conversations import ConversationStore, activity_ms
from storage.scripts import Command, run_commands
from storage.slots import PARTITIONS, partition_of

log = logging.getLogger(__name__)

PAGE_SLACK = 20  # entries fetched per partition beyond a page: those tied with the cursor are skipped


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
        await run_commands(self.redis, [command for update in updates for command in touch_commands(*update)])

    async def remove(self, user_id: str, conversation_id: str) -> None:
        await self.redis.zrem(keys.conversation_list(partition_of(conversation_id), user_id), conversation_id)

    async def page(self, user_id: str, *, first: int, after: tuple[int, str] | None) -> tuple[list[str], bool]:
        """Conversation ids, most recent activity first (ties: the greater id first); `after`
        is the previous page's last (ms, conversation id). Returns the ids and whether more follow."""
        await self.ensure_built(user_id)
        wanted, batch = first + 1, first + 1 + PAGE_SLACK
        top = f"{after[0]}" if after else "+inf"
        offsets = dict.fromkeys(range(PARTITIONS), 0)  # the partitions still read, and how far
        kept: dict[int, list[tuple[int, str]]] = {p: [] for p in range(PARTITIONS)}
        while offsets:
            replies = await run_commands(self.redis, [
                ("ZRANGE", keys.conversation_list(p, user_id), top, "-inf", "BYSCORE", "REV", "LIMIT", offset, batch,
                 "WITHSCORES") for p, offset in offsets.items()])
            for partition, reply in zip(list(offsets), replies, strict=True):
                entries = [(int(score), c) for c, score in reply]  # RESP3: [member, score] pairs
                # Same ms as the cursor: only ids after it in (ms desc, id desc) order.
                kept[partition] += [e for e in entries if not after or e[0] < after[0] or e[1] < after[1]]
                offsets[partition] += len(entries)
                if len(entries) < batch or len(kept[partition]) >= wanted:
                    del offsets[partition]
        merged = heapq.nlargest(wanted, (entry for entries in kept.values() for entry in entries))
        return [conversation_id for _, conversation_id in merged[:first]], len(merged) > first

    async def activity(self, user_id: str, conversation_ids: Sequence[str]) -> list[int]:
        """The list's ms of each conversation (0 where the list lacks it)."""
        replies = await run_commands(self.redis, [
            ("ZSCORE", keys.conversation_list(partition_of(c), user_id), c) for c in conversation_ids])
        return [int(score or 0) for score in replies]

    async def all_ids(self, user_id: str) -> list[str]:
        """Every conversation in the user's list (search scopes by these, after a membership check)."""
        await self.ensure_built(user_id)
        replies = await run_commands(self.redis, [
            ("ZRANGE", keys.conversation_list(p, user_id), 0, -1) for p in range(PARTITIONS)])
        return [conversation_id for reply in replies for conversation_id in reply]

    async def ensure_built(self, user_id: str) -> None:
        """Rebuild the list from MongoDB if this Redis dataset never had it (new, or lost)."""
        if await self.redis.exists(keys.user_conversations_built(user_id)):
            return
        member_of = await self.conversations.of_member(user_id)
        if member_of:
            latest = await self.archive.latest_ids([c.id for c in member_of])
            hot = await self._hot_latest([c.id for c in member_of])
            newest = {c.id: max(filter(None, (latest.get(c.id), hot.get(c.id))), default=None) for c in member_of}
            await self.touch_many([([user_id], c.id, activity_ms(c, newest[c.id])) for c in member_of])
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
    return [("ZADD", key, "GT", at_ms, conversation_id)
            for key in keys.conversation_lists_of(conversation_id, dict.fromkeys(user_ids))]
