"""The Redis hot window's upkeep: filled from MongoDB at start-up, trimmed as messages age.

Redis always holds the newest part of every conversation (trimming goes oldest first and
stops at anything MongoDB does not have yet, checked and deleted atomically per revision);
conversations with older, archive-only messages are marked, so history reads MongoDB only
for those.
"""

from __future__ import annotations

import asyncio
import logging
import time

from redis.asyncio import Redis

from storage import keys
from storage.archive import ArchiveStore
from storage.background import cancel_and_wait, run_every
from storage.ids import first_id_at

log = logging.getLogger(__name__)


# Oldest first: delete a message only if its hot revision is still the one MongoDB was found to
# have; stop at the first that changed (or is gone) and return how many were deleted.
# KEYS: hot set, archived conversations, then per message its document, its conversation's set
#       and its sender's set in that conversation.
# ARGV: per message its id, the revision checked, its conversation.
_REMOVE_IF_UNCHANGED = """
for n = 0, #ARGV / 3 - 1 do
  local document, id = KEYS[3 + 3 * n], ARGV[1 + 3 * n]
  local rev = redis.call('JSON.GET', document, '$.rev')
  if not rev or (cjson.decode(rev)[1] or 0) ~= tonumber(ARGV[2 + 3 * n]) then return n end
  redis.call('SADD', KEYS[2], ARGV[3 + 3 * n])
  redis.call('ZREM', KEYS[4 + 3 * n], id)
  redis.call('ZREM', KEYS[5 + 3 * n], id)
  redis.call('DEL', document)
  redis.call('ZREM', KEYS[1], id)
end
return #ARGV / 3
"""


class HotWindow:
    def __init__(self, redis: Redis, archive: ArchiveStore, *, window_seconds: float, interval_seconds: float) -> None:
        self.redis = redis
        self.archive = archive
        self._remove_if_unchanged = redis.register_script(_REMOVE_IF_UNCHANGED)
        self.window_seconds = window_seconds
        self.interval_seconds = interval_seconds
        self._task: asyncio.Task[None] | None = None

    def window_start_ms(self) -> int:
        return int((time.time() - self.window_seconds) * 1000)

    async def has_archived_only_messages(self, conversation: str) -> bool:
        return bool(await self.redis.sismember(keys.archived_conversations(), conversation))

    async def restore(self) -> None:
        """Rebuild what a Redis without our data lacks: archive markers and the hot window.
        Run at start-up and whenever the markers' sentinel disappears (Redis lost its data)."""
        window_start = self.window_start_ms()  # one value for both, so nothing falls between
        await self.rebuild_archive_markers(window_start_ms=window_start)
        await self.backfill_sender_sets()
        await self.hydrate(window_start_ms=window_start)

    def start(self) -> None:
        self._task = asyncio.create_task(
            run_every(self.interval_seconds, self.upkeep, what="hot window upkeep"), name="hot-window-keeper"
        )

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait([self._task])

    async def upkeep(self) -> None:
        """Restore what Redis lost (its archive markers gone), then trim what aged out."""
        if not await self.redis.exists(keys.archive_markers_ready()):
            log.warning("Redis lost the archive markers: restoring from MongoDB")
            await self.restore()
        await self.trim(window_start_ms=self.window_start_ms())

    async def hydrate(self, *, window_start_ms: int, batch_size: int = 500) -> int:
        """Copy every archived message of the hot window that Redis lacks back into Redis.

        No outbox entry and no event: these are already durable and were delivered before.
        """
        restored = 0
        async for messages in self.archive.since(first_id_at(window_start_ms), batch_size=batch_size):
            async with self.redis.pipeline(transaction=False) as pipe:
                for m in messages:
                    pipe.exists(keys.message_key(m.id))
                present = await pipe.execute()
            async with self.redis.pipeline(transaction=False) as pipe:
                for m, exists in zip(messages, present, strict=True):
                    if not exists:
                        pipe.json().set(keys.message_key(m.id), "$", m.to_document())
                        pipe.zadd(keys.conversation_messages(m.conversation), {m.id: 0})
                        pipe.zadd(keys.conversation_sent(m.conversation, m.sender_id), {m.id: 0})
                        pipe.zadd(keys.hot_messages(), {m.id: 0})
                        restored += 1
                await pipe.execute()
        if restored:
            log.info("hydrated the hot window from MongoDB", extra={"restored": restored})
        return restored

    async def backfill_sender_sets(self, *, batch_size: int = 500) -> int:
        """Once per Redis dataset: put every hot message id into its sender's set of the
        conversation (`keys.conversation_sent`), which the send script, hydrate and trim keep
        from then on. Returns how many ids were added."""
        if await self.redis.exists(keys.sender_sets_ready()):
            return 0
        added = 0
        after = "-"
        while ids := await self.redis.zrange(  # type: ignore[call-overload]  # BYLEX bounds are str; types-redis: int
            keys.hot_messages(), after, "+", bylex=True, offset=0, num=batch_size
        ):
            documents = [keys.message_key(i) for i in ids]
            conversations = await self.redis.json().mget(documents, "$.conversation")
            senders = await self.redis.json().mget(documents, "$.sender_id")
            async with self.redis.pipeline(transaction=False) as pipe:
                for message_id, conversation, sender in zip(ids, conversations, senders, strict=True):
                    if conversation and sender:  # an id without a document is an orphan trim drops
                        pipe.zadd(keys.conversation_sent(conversation[0], sender[0]), {message_id: 0})
                added += sum(await pipe.execute())
            after = f"({ids[-1]}"
        await self.redis.set(keys.sender_sets_ready(), "1")
        return added

    async def rebuild_archive_markers(self, *, window_start_ms: int, batch_size: int = 1000) -> int:
        """After Redis lost its data (or on a new Redis), mark every conversation that has
        messages older than the hot window: those exist only in MongoDB. Runs once per Redis
        dataset; afterwards trimming keeps the markers."""
        if await self.redis.exists(keys.archive_markers_ready()):
            return 0
        marked = 0
        batch: list[str] = []
        async for conversation in self.archive.conversations_before(first_id_at(window_start_ms)):
            batch.append(conversation)
            if len(batch) >= batch_size:
                marked += await self.redis.sadd(keys.archived_conversations(), *batch)
                batch = []
        if batch:
            marked += await self.redis.sadd(keys.archived_conversations(), *batch)
        await self.redis.set(keys.archive_markers_ready(), "1")
        return marked

    async def trim(self, *, window_start_ms: int, batch_size: int = 500) -> int:
        """Remove from Redis the messages older than the window that MongoDB has, oldest first,
        stopping at the first one not archived yet: what stays in Redis is always the newest
        part of every conversation, which history paging relies on."""
        removed = 0
        cutoff = first_id_at(window_start_ms)
        while True:
            ids = await self.redis.zrange(  # type: ignore[call-overload]  # BYLEX bounds are str; types-redis: int
                keys.hot_messages(), "-", f"({cutoff}", bylex=True, offset=0, num=batch_size
            )
            if not ids:
                break
            checked, orphans = await self.archived_prefix(ids)
            if orphans:
                await self.redis.zrem(keys.hot_messages(), *orphans)
            trimmed = await self.remove_checked(checked)
            removed += trimmed
            if trimmed + len(orphans) < len(ids):
                break  # the rest waits for the persister
        if removed:
            log.info("trimmed the hot window", extra={"removed": removed})
        return removed

    async def archived_prefix(self, ids: list[str]) -> tuple[list[tuple[str, int]], list[str]]:
        """Of `ids` (oldest first): the leading ones whose hot revision MongoDB has (or a later
        one), each with the revision compared, and the ids without a document among them."""
        archived = await self.archive.revisions(ids)
        hot_revisions = await self.redis.json().mget([keys.message_key(i) for i in ids], "$.rev")
        checked: list[tuple[str, int]] = []
        orphans: list[str] = []  # an id without a document has nothing left to archive
        for message_id, hot in zip(ids, hot_revisions, strict=True):
            if hot is None:
                orphans.append(message_id)
                continue
            rev = int(hot[0] if hot else 0)
            if message_id not in archived or archived[message_id] < rev:
                break
            checked.append((message_id, rev))  # MongoDB has this state (or a later one)
        return checked, orphans

    async def remove_checked(self, checked: list[tuple[str, int]]) -> int:
        """Remove the messages `archived_prefix` found archived, oldest first, each only if its
        hot revision is still the one compared (in one script), stopping at the first that
        changed: it stays hot, with everything newer, until MongoDB has its new revision.
        Returns how many were removed."""
        if not checked:
            return 0
        documents = [keys.message_key(i) for i, _ in checked]
        conversations = await self.redis.json().mget(documents, "$.conversation")
        senders = await self.redis.json().mget(documents, "$.sender_id")  # a sender never changes
        script_keys = [keys.hot_messages(), keys.archived_conversations()]
        args: list[str | int] = []
        for (message_id, rev), conversation, sender in zip(checked, conversations, senders, strict=True):
            if not conversation or not sender:
                break  # removed meanwhile (every instance trims): the rest is for the next pass
            script_keys += [keys.message_key(message_id), keys.conversation_messages(conversation[0]),
                            keys.conversation_sent(conversation[0], sender[0])]
            args += [message_id, rev, conversation[0]]
        return int(await self._remove_if_unchanged(keys=script_keys, args=args)) if args else 0
