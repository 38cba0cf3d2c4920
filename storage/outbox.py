"""Durable write-behind: the persister copies the Redis outbox stream into MongoDB.

Every API process runs one persister in the consumer group `persisters`. An entry is
acknowledged (and deleted) only after MongoDB confirmed the upsert, so a crash between
the two replays the entry — harmless, the upsert is idempotent. Entries left pending by a
dead consumer are taken over with XAUTOCLAIM once idle for `claim_idle_ms`. While MongoDB
is down the persister backs off and retries; the entries wait in Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Sequence

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from storage import keys
from storage.archive import ArchiveStore
from storage.background import cancel_and_wait
from storage.conversation_lists import ConversationLists
from storage.conversations import ConversationStore
from storage.messages import MessageStore
from storage.read_markers import ReadMarkerArchive
from storage.records import StoredMessage

log = logging.getLogger(__name__)

# (entry id, fields); fields is None for an entry deleted while pending.
StreamEntry = tuple[str, dict[str, str] | None]


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


async def ensure_group(redis: Redis) -> None:
    try:
        await redis.xgroup_create(keys.OUTBOX_STREAM, keys.OUTBOX_GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


class Persister:
    def __init__(
        self,
        redis: Redis,
        messages: MessageStore,
        archive: ArchiveStore,
        read_markers: ReadMarkerArchive,
        conversations: ConversationStore,
        lists: ConversationLists,
        *,
        batch_size: int = 500,
        block_ms: int = 1000,
        linger_seconds: float = 0.1,
        claim_idle_ms: int = 30_000,
        max_backoff_seconds: float = 5.0,
    ) -> None:
        self.redis = redis
        self.messages = messages
        self.archive = archive
        self.read_markers = read_markers
        self.conversations = conversations
        self.lists = lists
        self.consumer = consumer_name()
        self.batch_size = batch_size
        self.block_ms = block_ms
        self.linger_seconds = linger_seconds
        self.claim_idle_ms = claim_idle_ms
        self.max_backoff_seconds = max_backoff_seconds
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

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
        while not self._stopping.is_set():
            try:
                persisted = await self.drain_once()
                backoff = 0.1
                if 0 < persisted < self.batch_size:
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
        """Persist one batch: our own pending entries first, then claimed, then new ones."""
        entries = await self._read("0")  # delivered to us before but not acknowledged
        if not entries:
            entries = await self._claim()
        if not entries:
            entries = await self._read(">", block=True)
        if entries:
            await self.persist(entries)
        return len(entries)

    async def _read(self, start: str, *, block: bool = False) -> list[StreamEntry]:
        response = await self.redis.xreadgroup(
            keys.OUTBOX_GROUP,
            self.consumer,
            {keys.OUTBOX_STREAM: start},
            count=self.batch_size,
            block=self.block_ms if block else None,
        )
        if not response:
            return []
        return list(response[0][1])

    async def _claim(self) -> list[StreamEntry]:
        _, claimed, *_ = await self.redis.xautoclaim(
            keys.OUTBOX_STREAM,
            keys.OUTBOX_GROUP,
            self.consumer,
            min_idle_time=self.claim_idle_ms,
            start_id="0-0",
            count=self.batch_size,
        )
        if claimed:
            log.info("claimed outbox entries of a dead consumer", extra={"count": len(claimed)})
        return list(claimed)

    async def persist(self, entries: Sequence[StreamEntry]) -> None:
        fields = [f for _, f in entries if f]
        await self.conversations.persist_created([f["conversation"] for f in fields if f.get("kind") == "conversation"])
        await self.read_markers.persist([f for f in fields if f.get("kind") == "read"])
        located = {f["id"]: keys.message_key(f["conversation"], f["id"]) for f in fields if "id" in f}
        messages = await self.messages.get_hot_keys(list(located.values()))  # the latest state of each
        if len(messages) < len(located):
            found = {m.id for m in messages}
            log.warning("outbox entries without a hot message", extra={"ids": [i for i in located if i not in found]})
        await self.archive.upsert(messages)
        await self._touch_member_lists(messages)
        entry_ids = [entry_id for entry_id, _ in entries]
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(keys.OUTBOX_STREAM, keys.OUTBOX_GROUP, *entry_ids)
            pipe.xdel(keys.OUTBOX_STREAM, *entry_ids)
            await pipe.execute()

    async def _touch_member_lists(self, messages: Sequence[StoredMessage]) -> None:
        """Repeat each send's conversation-list update (ZADD GT: idempotent), so a crash between
        the send script and that update loses nothing."""
        newest: dict[str, int] = {}
        for message in messages:
            newest[message.conversation_id] = max(newest.get(message.conversation_id, 0), message.sent_at_ms)
        for conversation_id, at_ms in newest.items():
            members = await self.redis.hkeys(keys.conversation_members(conversation_id))
            await self.lists.touch(members, conversation_id, at_ms)
