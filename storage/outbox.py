"""Durable write-behind: the persister copies the Redis outbox streams into MongoDB.

There is one outbox stream per partition (`keys.outbox_stream`), in the partition of the
conversations whose changes it carries, so every script that appends to it stays in one hash
slot. Every API process runs one persister in the consumer group `persisters` of every stream;
it reads them with one single-stream command each (pipelined), never one command over several
streams: Redis Cluster refuses a multi-key command across slots (CROSSSLOT), even on one node.
So it cannot block on all streams at once: when all are empty it looks again after
`idle_poll_seconds`, doubling that pause while they stay empty (up to `idle_poll_max_seconds`).

An entry is acknowledged (and deleted) only after MongoDB confirmed the upsert, so a crash
between the two replays the entry — harmless, the upsert is idempotent. Entries left pending by
a dead consumer are taken over with XAUTOCLAIM once idle for `claim_idle_ms` (looked for at
most once a second). While MongoDB is down the persister backs off and retries; the entries
wait in Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Sequence

from redis.asyncio import Redis

from storage import keys
from storage.archive import ArchiveStore
from storage.background import IdleWait, cancel_and_wait
from storage.conversations import ConversationStore
from storage.messages import MessageStore
from storage.read_markers import ReadMarkerArchive
from storage.scripts import run_pipelined

log = logging.getLogger(__name__)

# KEYS: a stream. ARGV: the group, then entry ids. Acknowledged and deleted in one step.
_ACKNOWLEDGE = """
redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 2))
return redis.call('XDEL', KEYS[1], unpack(ARGV, 2))
"""

# (stream, entry id, fields); fields is None for an entry deleted while pending.
StreamEntry = tuple[str, str, dict[str, str] | None]


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


async def ensure_groups(redis: Redis, streams: Sequence[str], group: str) -> None:
    """The consumer group on each stream (made with the stream if missing); one per command,
    each a single key."""
    async with redis.pipeline(transaction=False) as pipe:
        for stream in streams:
            pipe.xgroup_create(stream, group, id="0", mkstream=True)
        replies = await pipe.execute(raise_on_error=False)
    for reply in replies:
        if isinstance(reply, Exception) and "BUSYGROUP" not in str(reply):
            raise reply


async def ensure_group(redis: Redis) -> None:
    """The persisters' group on every partition's outbox stream."""
    await ensure_groups(redis, keys.outbox_streams(), keys.OUTBOX_GROUP)


def flatten(response: Sequence[tuple[str, Sequence[tuple[str, dict[str, str] | None]]]] | None) -> list[StreamEntry]:
    """An XREADGROUP reply as (stream, entry id, fields) entries."""
    return [(stream, entry_id, fields) for stream, entries in response or [] for entry_id, fields in entries]


async def read_streams(redis: Redis, group: str, consumer: str, streams: Sequence[str], start: str,
                       count: int) -> list[StreamEntry]:
    """Up to `count` entries of each stream for `consumer`: one XREADGROUP per stream (one
    slot each), pipelined into one round-trip (a cluster client sends each node its part)."""
    async with redis.pipeline(transaction=False) as pipe:
        for stream in streams:
            pipe.xreadgroup(group, consumer, {stream: start}, count=count)
        replies = await pipe.execute()
    return [entry for reply in replies for entry in flatten(reply)]


async def claim_streams(redis: Redis, group: str, consumer: str, streams: Sequence[str], *, min_idle_ms: int,
                        count: int) -> list[StreamEntry]:
    """Up to `count` entries of each stream idle for `min_idle_ms` (a dead consumer's), now
    `consumer`'s: one XAUTOCLAIM per stream, pipelined."""
    async with redis.pipeline(transaction=False) as pipe:
        for stream in streams:
            pipe.xautoclaim(stream, group, consumer, min_idle_time=min_idle_ms, start_id="0-0", count=count)
        replies = await pipe.execute()
    return [(stream, entry_id, fields)
            for stream, (_, claimed, *_) in zip(streams, replies, strict=True) for entry_id, fields in claimed]


class Persister:
    def __init__(
        self,
        redis: Redis,
        messages: MessageStore,
        archive: ArchiveStore,
        read_markers: ReadMarkerArchive,
        conversations: ConversationStore,
        *,
        batch_size: int = 500,
        idle_poll_seconds: float = 0.05,
        idle_poll_max_seconds: float = 0.5,
        linger_seconds: float = 0.1,
        claim_idle_ms: int = 30_000,
        max_backoff_seconds: float = 5.0,
    ) -> None:
        self.redis = redis
        self.messages = messages
        self.archive = archive
        self.read_markers = read_markers
        self.conversations = conversations
        self.consumer = consumer_name()
        self.batch_size = batch_size
        self.idle_poll_seconds = idle_poll_seconds
        self.idle_poll_max_seconds = idle_poll_max_seconds
        self.linger_seconds = linger_seconds
        self.claim_idle_ms = claim_idle_ms
        self.max_backoff_seconds = max_backoff_seconds
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._maybe_own_pending = True  # entries delivered to us but not acknowledged (a failed batch)
        self._next_claim_at = 0.0  # monotonic time of the next look for a dead consumer's entries
        self._acknowledge = redis.register_script(_ACKNOWLEDGE)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="outbox-persister")

    async def stop(self, timeout: float = 10.0) -> None:
        """Finish the batch in hand (up to `timeout`), then stop."""
        self._stopping.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except TimeoutError:
            await cancel_and_wait([self._task])

    async def run(self) -> None:
        await ensure_group(self.redis)
        backoff = 0.1
        idle = IdleWait(self.idle_poll_seconds, self.idle_poll_max_seconds)
        while not self._stopping.is_set():
            try:
                persisted = await self.drain_once()
                backoff = 0.1
                if persisted == 0:
                    await self._pause(idle.after_empty())
                    continue
                idle.after_work()
                if persisted < self.batch_size:
                    # A part batch: fewer, larger MongoDB writes (each costs the server far more
                    # than a document in it); the messages are durable in Redis meanwhile.
                    await self._pause(self.linger_seconds)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - MongoDB or Redis outage: wait and retry
                log.warning("persister retrying after error", extra={"error": repr(exc), "backoff_s": backoff})
                if "NOGROUP" in str(exc):  # Redis lost its data: the group must be made again
                    with contextlib.suppress(Exception):
                        await ensure_group(self.redis)
                await self._pause(backoff)
                backoff = min(backoff * 2, self.max_backoff_seconds)

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when asked to stop."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()

    async def drain_once(self) -> int:
        """Persist one batch (up to `batch_size` entries of each partition's stream): our own
        pending entries first, then claimed, then new ones. 0 when every stream is empty."""
        entries: list[StreamEntry] = []
        if self._maybe_own_pending:  # delivered to us before but not acknowledged
            entries = await self._read("0")
            self._maybe_own_pending = bool(entries)
        if not entries:
            entries = await self._claim()
        if not entries:
            entries = await self._read(">")
        if entries:
            self._maybe_own_pending = True  # until acknowledged
            await self.persist(entries)
            self._maybe_own_pending = False
        return len(entries)

    async def _read(self, start: str) -> list[StreamEntry]:
        return await read_streams(self.redis, keys.OUTBOX_GROUP, self.consumer, keys.outbox_streams(), start,
                                  self.batch_size)

    async def _claim(self) -> list[StreamEntry]:
        """Entries a dead consumer left pending, from every stream; looked for at most once a
        second (and twice per `claim_idle_ms`)."""
        now = time.monotonic()
        if now < self._next_claim_at:
            return []
        self._next_claim_at = now + min(1.0, self.claim_idle_ms / 2000)
        claimed = await claim_streams(self.redis, keys.OUTBOX_GROUP, self.consumer, keys.outbox_streams(),
                                      min_idle_ms=self.claim_idle_ms, count=self.batch_size)
        if claimed:
            log.info("claimed outbox entries of a dead consumer", extra={"count": len(claimed)})
        return claimed

    async def persist(self, entries: Sequence[StreamEntry]) -> None:
        fields = [f for _, _, f in entries if f]
        await self.conversations.persist_created([f["conversation"] for f in fields if f.get("kind") == "conversation"])
        await self.read_markers.persist([f for f in fields if f.get("kind") == "read"])
        located = {f["id"]: keys.message_key(f["conversation"], f["id"]) for f in fields if "id" in f}
        messages = await self.messages.get_hot_keys(list(located.values()))  # the latest state of each
        if len(messages) < len(located):
            found = {m.id for m in messages}
            log.warning("outbox entries without a hot message", extra={"ids": [i for i in located if i not in found]})
        if repeats := await self.archive.upsert(messages):  # a clientId's second message: the first stays
            await self.messages.withdraw_repeats(repeats)
            messages = [m for m in messages if m.id not in {r.id for r, _ in repeats}]
        by_stream: dict[str, list[str]] = {}
        for stream, entry_id, _ in entries:
            by_stream.setdefault(stream, []).append(entry_id)
        await run_pipelined(self.redis, self._acknowledge, [([stream], [keys.OUTBOX_GROUP, *ids])
                                                            for stream, ids in by_stream.items()])
