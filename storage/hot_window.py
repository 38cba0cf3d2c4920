"""The Redis hot window's upkeep: filled from MongoDB at start-up, trimmed as messages age.

Redis always holds the newest part of every conversation (trimming goes oldest first and
stops at anything MongoDB does not have yet, checked and deleted atomically per revision);
conversations with older, archive-only messages are marked, so history reads MongoDB only
for those. A trimmed message leaves a slim search entry behind (storage/archive_index.py), in
the same script, so search covers every message exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from redis.asyncio import Redis

from storage import keys
from storage.archive import ArchiveStore
from storage.archive_index import ArchiveIndex
from storage.background import cancel_and_wait, run_every
from storage.hot_copy import HotCopies
from storage.ids import first_id_at
from storage.records import StoredMessage
from storage.slots import PARTITIONS, partition_of

log = logging.getLogger(__name__)


# Oldest first: delete a message only if its hot revision is still the one MongoDB was found to
# have, writing its slim search entry in its place (storage/archive_index.py: conversation,
# text, time and revision, copied as JSON text); stop at the first that changed (or is gone) and
# return how many were deleted. One partition's messages (every key in its slot).
# KEYS: the partition's hot set, then per message its document, its conversation's ids, its sender's ids in the
#       conversation, the conversation's meta (marked: it now has archive-only messages), its search entry.
# ARGV: per message its hot-set entry, its id, the revision checked.
_REMOVE_IF_UNCHANGED = """
for n = 0, #ARGV / 3 - 1 do
  local document, id = KEYS[2 + 5 * n], ARGV[2 + 3 * n]
  local rev = redis.call('JSON.GET', document, '$.rev')
  if not rev or (cjson.decode(rev)[1] or 0) ~= tonumber(ARGV[3 + 3 * n]) then return n end
  local text = string.sub(redis.call('JSON.GET', document, '$.text'), 2, -2)
  if text ~= '""' then
    redis.call('JSON.SET', KEYS[6 + 5 * n], '$', '{"conversation_id":'
      .. string.sub(redis.call('JSON.GET', document, '$.conversation_id'), 2, -2) .. ',"text":' .. text
      .. ',"sent_at_ms":' .. string.sub(redis.call('JSON.GET', document, '$.sent_at_ms'), 2, -2)
      .. ',"rev":' .. ARGV[3 + 3 * n] .. '}')
  end
  redis.call('HSET', KEYS[5 + 5 * n], 'archived', '1')
  redis.call('ZREM', KEYS[3 + 5 * n], id)
  redis.call('ZREM', KEYS[4 + 5 * n], id)
  redis.call('DEL', document)
  redis.call('ZREM', KEYS[1], ARGV[1 + 3 * n])
end
return #ARGV / 3
"""


RestoreStep = Callable[[], Awaitable[object]]


class HotWindow:
    """`restore_steps` rebuild the rest of what Redis keeps for the app (search indexes, the
    user mirror, ...); `restore` runs them, then the markers and the hot window, so a Redis that
    lost its data is noticed at one point (`upkeep`) and restored by one list."""

    def __init__(self, redis: Redis, archive: ArchiveStore, *, window_seconds: float, interval_seconds: float,
                 restore_steps: Sequence[RestoreStep] = ()) -> None:
        self.redis = redis
        self.archive = archive
        self.restore_steps = list(restore_steps)
        self.archive_index = ArchiveIndex(redis)
        self.hot_copies = HotCopies(redis)
        self._remove_if_unchanged = redis.register_script(_REMOVE_IF_UNCHANGED)
        self.window_seconds = window_seconds
        self.interval_seconds = interval_seconds
        self._task: asyncio.Task[None] | None = None

    def window_start_ms(self) -> int:
        return int((time.time() - self.window_seconds) * 1000)

    async def has_archived_only_messages(self, conversation_id: str) -> bool:
        return await self.redis.hget(keys.conversation_meta(conversation_id), "archived") == "1"

    async def restore(self) -> None:
        """Rebuild what a Redis without our data lacks: the `restore_steps` (in order), then the
        archive markers, the archived messages' search entries and the hot window. Run at
        start-up and whenever the markers' sentinel disappears (Redis lost its data); the
        sentinel is set only once all of it succeeded, so a failed step is retried at the next
        upkeep. Every step is idempotent (instances may restore at the same time)."""
        for step in self.restore_steps:
            await step()
        window_start = self.window_start_ms()  # one value for all three, so nothing falls between
        await self.rebuild_archive_markers(window_start_ms=window_start)
        await self.archive_index.rebuild(self.archive, before_id=first_id_at(window_start))
        await self.hydrate(window_start_ms=window_start)
        await self.redis.set(keys.archive_markers_ready(), "1")  # restored: the next loss is noticed

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
                    pipe.exists(keys.message_key(m.conversation_id, m.id))
                present = await pipe.execute()
            lacking = [m for m, exists in zip(messages, present, strict=True) if not exists]
            async with self.redis.pipeline(transaction=False) as pipe:
                for m in lacking:
                    # NX: another instance restoring too may have copied it, and it changed since.
                    pipe.json().set(keys.message_key(m.conversation_id, m.id), "$", m.to_document(), nx=True)
                    pipe.zadd(keys.conversation_messages(m.conversation_id), {m.id: 0})
                    pipe.zadd(keys.conversation_sent(m.conversation_id, m.sender_id), {m.id: 0})
                    pipe.zadd(keys.hot_messages(partition_of(m.conversation_id)), {hot_member(m): 0})
                    pipe.delete(keys.archived_message_entry(m.conversation_id, m.id))  # a wider window
                written = (await pipe.execute())[::5]
            copied = [m for m, done in zip(lacking, written, strict=True) if done]
            await self._catch_up(copied)
            restored += len(copied)
        if restored:
            log.info("hydrated the hot window from MongoDB", extra={"restored": restored})
        return restored

    async def _catch_up(self, copied: list[StoredMessage]) -> None:
        """A change that went to MongoDB while the batch was read (the copy lacked it) lands now."""
        if not copied:
            return
        revisions = await self.archive.revisions([m.id for m in copied])
        newer = [m.id for m in copied if revisions.get(m.id, m.rev) > m.rev]
        for message in (await self.archive.get_many(newer)).values() if newer else ():
            await self.hot_copies.refresh(message)

    async def rebuild_archive_markers(self, *, window_start_ms: int, batch_size: int = 1000) -> int:
        """After Redis lost its data (or on a new Redis), mark every conversation that has
        messages older than the hot window: those exist only in MongoDB. Runs once per Redis
        dataset (`restore` sets the sentinel once everything is back); afterwards trimming keeps
        the markers."""
        if await self.redis.exists(keys.archive_markers_ready()):
            return 0
        marked = 0
        async with self.redis.pipeline(transaction=False) as pipe:  # one key per conversation
            async for conversation_id in self.archive.conversations_before(first_id_at(window_start_ms)):
                pipe.hset(keys.conversation_meta(conversation_id), "archived", "1")
                marked += 1
                if len(pipe) >= batch_size:
                    await pipe.execute()
            await pipe.execute()
        return marked

    async def trim(self, *, window_start_ms: int, batch_size: int = 500) -> int:
        """Remove from Redis the messages older than the window that MongoDB has, oldest first,
        stopping at the first one not archived yet: what stays in Redis is always the newest
        part of every conversation, which history paging relies on. Partition by partition (a
        conversation lives in one), so every batch, script and JSON.MGET stays in one slot."""
        removed = 0
        cutoff = first_id_at(window_start_ms)
        for partition in range(PARTITIONS):
            removed += await self._trim_partition(partition, cutoff, batch_size)
        if removed:
            log.info("trimmed the hot window", extra={"removed": removed})
        return removed

    async def _trim_partition(self, partition: int, cutoff: str, batch_size: int) -> int:
        hot_set = keys.hot_messages(partition)
        removed = 0
        while True:
            ids = await self.redis.zrange(  # type: ignore[call-overload]  # BYLEX bounds are str; types-redis: int
                hot_set, "-", f"({cutoff}", bylex=True, offset=0, num=batch_size
            )
            if not ids:
                break
            checked, orphans = await self.archived_prefix(ids)
            if orphans:
                await self.redis.zrem(hot_set, *orphans)
            trimmed = await self.remove_checked(checked)
            removed += trimmed
            if trimmed + len(orphans) < len(ids):
                break  # the rest of this partition waits for the persister
        return removed

    async def archived_prefix(self, entries: list[str]) -> tuple[list[tuple[str, int]], list[str]]:
        """Of hot-set `entries` of one partition (oldest first): the leading ones whose hot
        revision MongoDB has (or a later one), each with the revision compared, and the entries
        without a document."""
        located = [_locate(e) for e in entries]
        _one_partition(located)
        archived = await self.archive.revisions([message_id for message_id, _ in located])
        hot_revisions = await self.redis.json().mget([keys.message_key(c, i) for i, c in located], "$.rev")
        checked: list[tuple[str, int]] = []
        orphans: list[str] = []  # an entry without a document has nothing left to archive
        for entry, (message_id, _), hot in zip(entries, located, hot_revisions, strict=True):
            if hot is None:
                orphans.append(entry)
                continue
            rev = int(hot[0] if hot else 0)
            if message_id not in archived or archived[message_id] < rev:
                break
            checked.append((entry, rev))  # MongoDB has this state (or a later one)
        return checked, orphans

    async def remove_checked(self, checked: list[tuple[str, int]]) -> int:
        """Remove the messages `archived_prefix` found archived, oldest first, each only if its
        hot revision is still the one compared (in one script), stopping at the first that
        changed: it stays hot, with everything newer, until MongoDB has its new revision.
        Returns how many were removed."""
        if not checked:
            return 0
        located = [_locate(entry) for entry, _ in checked]
        partition = _one_partition(located)
        documents = [keys.message_key(c, i) for i, c in located]
        senders = await self.redis.json().mget(documents, "$.sender_id")  # a sender never changes
        script_keys = [keys.hot_messages(partition)]
        args: list[str | int] = []
        for (entry, rev), (message_id, conversation_id), document, sender in zip(
            checked, located, documents, senders, strict=True
        ):
            if not sender:
                break  # removed meanwhile (every instance trims): the rest is for the next pass
            script_keys += [document, keys.conversation_messages(conversation_id),
                            keys.conversation_sent(conversation_id, sender[0]), keys.conversation_meta(conversation_id),
                            keys.archived_message_entry(conversation_id, message_id)]
            args += [entry, message_id, rev]
        return int(await self._remove_if_unchanged(keys=script_keys, args=args)) if args else 0


def _locate(entry: str) -> tuple[str, str]:
    """A hot-set entry ("<message id>:<conversation id>") as (message id, conversation id)."""
    message_id, _, conversation_id = entry.partition(":")
    return message_id, conversation_id


def _one_partition(located: list[tuple[str, str]]) -> int:
    """The partition of these (message id, conversation id) pairs, which must share one (their
    keys go into one JSON.MGET or script)."""
    partitions = {partition_of(conversation_id) for _, conversation_id in located}
    if len(partitions) > 1:
        raise ValueError(f"hot-set entries of several partitions: {sorted(partitions)}")
    return partitions.pop() if partitions else 0


def hot_member(message: StoredMessage) -> str:
    """The message's entry in the hot set: its id first, so the set sorts by time."""
    return f"{message.id}:{message.conversation_id}"
