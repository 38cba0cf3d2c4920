"""The transcription queue: one Redis Stream per partition (`keys.transcription_stream`, in the
partition of the message's conversation, so the send script queues a job in its own slot),
each consumed by the consumer group `transcribers`, so every API instance can work on it and a
job survives a crash (pending entries of a dead worker are taken over once idle; a live worker
keeps its entries fresh while it transcribes). A worker asks the streams one at a time (Redis
Cluster refuses one command over several slots) and, when all are empty, again after
`idle_poll_seconds`, doubling that pause while they stay empty (up to `idle_poll_max_seconds`).

A job carries its message's conversation, so the worker reads the message with one key.
Failures are retried with exponential backoff through a delayed-job sorted set per partition;
after the last attempt the message is marked FAILED, with the reason in the log. A MongoDB error
while reading the audio is not the job's fault: the same attempt is retried with backoff.
A job whose workers died `max_deliveries` times (the stream's delivery count) is FAILED.
A result is stored through the revision-checked change path (`storage.message_changes`): a
message deleted while it was transcribed stays deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time

from gridfs import NoFile
from pymongo.errors import PyMongoError
from redis.asyncio import Redis

from storage import keys
from storage.audio import AudioStore
from storage.background import IdleWait, cancel_and_wait
from storage.message_changes import Change
from storage.messages import MessageStore
from storage.outbox import StreamEntry, claim_streams, consumer_name, ensure_groups, read_streams
from storage.records import StoredMessage, StoredTranscript, StoredWord
from storage.slots import PARTITIONS, partition_of
from transcription.base import Transcriber, TranscriptionFailed, TranscriptResult

log = logging.getLogger(__name__)

# Moves one partition's due delayed jobs ("id:conversation:attempt" or
# "id:conversation:attempt:read_failures") onto its stream, atomically (several instances run this).
# KEYS: the partition's delayed set, its stream. ARGV: now ms.
_RELEASE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 100)
for _, job in ipairs(due) do
  local id, conversation, attempt, reads = string.match(job, '^([^:]+):([^:]+):([^:]+):?(.*)$')
  if reads == '' then
    redis.call('XADD', KEYS[2], '*', 'id', id, 'conversation', conversation, 'attempt', attempt)
  else
    redis.call('XADD', KEYS[2], '*', 'id', id, 'conversation', conversation, 'attempt', attempt,
               'read_failures', reads)
  end
  redis.call('ZREM', KEYS[1], job)
end
return #due
"""
# Longest wait between retries of an audio read (MongoDB down): it comes back, keep trying.
MAX_READ_RETRY_SECONDS = 60.0


def _waiting(message: StoredMessage) -> bool:
    """A voice message still waiting for its transcript (a deleted one has no audio and no status)."""
    return message.audio is not None and message.transcription_status == "PENDING" and message.deleted_at_ms is None


def delayed_job(message: StoredMessage, attempt: int, read_failures: int = 0) -> str:
    """A delayed-set member: the job's message, conversation, attempt (and read failures)."""
    job = f"{message.id}:{message.conversation_id}:{attempt}"
    return f"{job}:{read_failures}" if read_failures else job


class TranscriptionWorker:
    def __init__(
        self,
        redis: Redis,
        *,
        messages: MessageStore,
        audio: AudioStore,
        transcriber: Transcriber,
        concurrency: int = 1,
        max_attempts: int = 3,
        retry_base_seconds: float = 2.0,
        claim_idle_ms: int = 60_000,
        max_deliveries: int = 5,
        idle_poll_seconds: float = 0.25,
        idle_poll_max_seconds: float = 1.0,
    ) -> None:
        self.redis = redis
        self.messages = messages
        self.audio = audio
        self.transcriber = transcriber
        self.concurrency = concurrency
        self.max_attempts = max_attempts
        self.retry_base_seconds = retry_base_seconds
        self.claim_idle_ms = claim_idle_ms
        self.max_deliveries = max_deliveries
        self.idle_poll_seconds = idle_poll_seconds
        self.idle_poll_max_seconds = idle_poll_max_seconds
        self.consumer = consumer_name()
        self._release_due = redis.register_script(_RELEASE_DUE)
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._next_partition = 0  # where the next look for a new job starts (round robin)

    async def _ensure_group(self) -> None:
        await ensure_groups(self.redis, keys.transcription_streams(), keys.TRANSCRIPTION_GROUP)

    async def start(self) -> None:
        await self._ensure_group()
        self._tasks = [asyncio.create_task(self._consume(), name=f"transcriber-{i}") for i in range(self.concurrency)]
        self._tasks.append(asyncio.create_task(self._release_delayed(), name="transcriber-delayed"))

    async def stop(self, grace_seconds: float = 1.5) -> None:
        """Let each loop finish what it reads (an idle one stops at once), then cancel what is left: a
        transcription in progress is taken over later, since its job stays unacknowledged."""
        self._stopping.set()
        if self._tasks:
            _, running = await asyncio.wait(self._tasks, timeout=grace_seconds)
            await cancel_and_wait(running)

    async def _consume(self) -> None:
        backoff = 0.2
        idle = IdleWait(self.idle_poll_seconds, self.idle_poll_max_seconds)
        while not self._stopping.is_set():
            try:
                entries = await self._next_entries()
                backoff = 0.2
                if not entries:
                    await self._pause(idle.after_empty())
                    continue
                idle.after_work()
                held = {(stream, entry_id) for stream, entry_id, _ in entries}
                keep_fresh = asyncio.create_task(self._keep_claimed(held))
                try:
                    for stream, entry_id, fields in entries:
                        await self._handle(stream, entry_id, fields)
                        held.discard((stream, entry_id))
                finally:
                    keep_fresh.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await keep_fresh
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis/MongoDB hiccup: wait and retry
                log.warning("transcription worker error", extra={"error": repr(exc)})
                if "NOGROUP" in str(exc):  # Redis lost its data: the group must be made again
                    with contextlib.suppress(Exception):
                        await self._ensure_group()
                await self._pause(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _next_entries(self) -> list[StreamEntry]:
        """Jobs a dead worker left (at most one per partition), else one new job: each
        partition's stream is asked in turn (one single-stream XREADGROUP each: Redis Cluster
        refuses one over several slots), from a rotating start so no partition waits behind the
        others. When all are empty, the caller looks again after `idle_poll_seconds`."""
        claimed = await self._claim()
        if claimed:
            return claimed
        streams = keys.transcription_streams()
        start = self._next_partition
        self._next_partition = (start + 1) % PARTITIONS
        for stream in streams[start:] + streams[:start]:
            found = await read_streams(self.redis, keys.TRANSCRIPTION_GROUP, self.consumer, [stream], ">", 1)
            if found:
                return found
        return []

    async def _claim(self) -> list[StreamEntry]:
        """Up to one job per stream idle for `claim_idle_ms` (one XAUTOCLAIM per stream,
        pipelined); a job handed out too often is given up instead."""
        claimed = await claim_streams(self.redis, keys.TRANSCRIPTION_GROUP, self.consumer,
                                      keys.transcription_streams(), min_idle_ms=self.claim_idle_ms, count=1)
        taken: list[StreamEntry] = []
        for stream, entry_id, fields in claimed:
            deliveries = await self._deliveries(stream, entry_id)
            if deliveries > self.max_deliveries:
                await self._give_up(stream, entry_id, fields, deliveries)
                continue
            log.info("took over a transcription job of a dead worker",
                     extra={"entry": entry_id, "deliveries": deliveries})
            taken.append((stream, entry_id, fields))
        return taken

    async def _deliveries(self, stream: str, entry_id: str) -> int:
        """How often the entry was handed out (XAUTOCLAIM counts its own claim)."""
        pending = await self.redis.xpending_range(
            stream, keys.TRANSCRIPTION_GROUP, min=entry_id, max=entry_id, count=1
        )
        return int(pending[0]["times_delivered"]) if pending else 0

    async def _give_up(self, stream: str, entry_id: str, fields: dict[str, str] | None, deliveries: int) -> None:
        """A job that kills its worker every time (say, audio that crashes the decoder) must
        not be taken over forever: FAILED, reason in the log."""
        if fields and "conversation" in fields:
            reason = f"its worker died {deliveries - 1} times"
            log.error("transcription failed", extra={"message_id": fields["id"], "reason": reason})
            await self._mark_failed(fields["id"], fields["conversation"])
        await self._ack(stream, entry_id)

    async def _handle(self, stream: str, entry_id: str, fields: dict[str, str] | None) -> None:
        if fields and "conversation" not in fields:  # every job names it (the migration added it to old ones)
            log.error("transcription job without its conversation", extra={"message_id": fields.get("id")})
        elif fields:
            await self.process(fields["id"], fields["conversation"], int(fields.get("attempt", "1")),
                               read_failures=int(fields.get("read_failures", "0")))
        await self._ack(stream, entry_id)

    async def _ack(self, stream: str, entry_id: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:  # one stream: one slot
            pipe.xack(stream, keys.TRANSCRIPTION_GROUP, entry_id)
            pipe.xdel(stream, entry_id)
            await pipe.execute()

    async def _keep_claimed(self, held: set[tuple[str, str]]) -> None:
        """Reset the idle time of the jobs we hold (`held`, emptied as they are done) while we
        work, so no one takes a live job over."""
        interval = max(self.claim_idle_ms / 3000, 0.5)
        while True:
            await asyncio.sleep(interval)
            for stream, entry_id in list(held):
                await self.redis.xclaim(stream, keys.TRANSCRIPTION_GROUP, self.consumer, 0, [entry_id], justid=True)

    async def process(self, message_id: str, conversation_id: str, attempt: int, *, read_failures: int = 0) -> None:
        message = await self.messages.find(message_id, conversation_id=conversation_id)
        if message is None or message.audio is None or not _waiting(message):
            return  # gone, deleted, or already settled (a duplicate job)
        started = time.perf_counter()
        try:
            audio = await self.audio.read_all(message.audio.id)
            result = await self.transcriber.transcribe(audio, message.audio.mime_type)
        except TranscriptionFailed as exc:
            await self._failed(message, attempt, exc.reason, retryable=exc.retryable)
            return
        except NoFile:
            await self._failed(message, attempt, "the audio file is missing", retryable=True)
            return
        except PyMongoError as exc:  # MongoDB unavailable: not the job's fault, so no attempt is spent
            await self._retry_read(message, attempt, read_failures, exc)
            return
        except Exception as exc:
            log.exception("transcription crashed", extra={"message_id": message_id})
            await self._failed(message, attempt, f"unexpected error: {type(exc).__name__}", retryable=True)
            return
        log.info(
            "transcribed voice message",
            extra={"message_id": message_id, "engine": result.engine, "audio_s": message.audio.duration_seconds,
                   "took_s": round(time.perf_counter() - started, 3)},
        )
        await self._settle(message, result)

    async def _settle(self, message: StoredMessage, result: TranscriptResult) -> None:
        """Store the transcript if the message still waits for it: decided again on the latest
        state when another change (a reaction, a delete) landed meanwhile, so a deleted message
        stays deleted and no reaction is lost."""
        transcript = StoredTranscript(
            text=result.text, engine=result.engine, confidence=result.confidence, language=result.language,
            words=tuple(StoredWord(w.word, w.start, w.end, w.confidence) for w in result.words),
        )

        def decide(current: StoredMessage) -> Change | None:
            if not _waiting(current):
                return None
            return Change(dataclasses.replace(current, text=result.text, transcription_status="DONE",
                                              transcript=transcript))

        await self.messages.changes.change(message.id, message.conversation_id, decide)

    async def _failed(self, message: StoredMessage, attempt: int, reason: str, *, retryable: bool) -> None:
        if retryable and attempt < self.max_attempts:
            delay = self.retry_base_seconds * 2 ** (attempt - 1)
            log.warning("transcription failed, will retry", extra={
                "message_id": message.id, "attempt": attempt, "reason": reason, "retry_in_s": delay})
            due_ms = int((time.time() + delay) * 1000)
            await self.redis.zadd(keys.transcription_delayed(partition_of(message.conversation_id)),
                                  {delayed_job(message, attempt + 1): due_ms})
            return
        log.error("transcription failed", extra={"message_id": message.id, "attempt": attempt, "reason": reason})
        await self._mark_failed(message.id, message.conversation_id)

    async def _mark_failed(self, message_id: str, conversation_id: str) -> None:
        def decide(current: StoredMessage) -> Change | None:
            return Change(dataclasses.replace(current, transcription_status="FAILED")) if _waiting(current) else None

        await self.messages.changes.change(message_id, conversation_id, decide)

    async def _retry_read(self, message: StoredMessage, attempt: int, read_failures: int, exc: Exception) -> None:
        """MongoDB could not hand over the audio: the same attempt again later, waiting longer each time."""
        delay = min(self.retry_base_seconds * 2 ** read_failures, MAX_READ_RETRY_SECONDS)
        log.warning("reading the audio failed, will retry the same attempt", extra={
            "message_id": message.id, "attempt": attempt, "error": repr(exc), "retry_in_s": delay})
        due_ms = int((time.time() + delay) * 1000)
        await self.redis.zadd(keys.transcription_delayed(partition_of(message.conversation_id)),
                              {delayed_job(message, attempt, read_failures + 1): due_ms})

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when asked to stop."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()

    async def release_due(self) -> None:
        """Move the delayed jobs that are due onto their streams: one script per partition (its
        delayed set and its stream, one slot), pipelined."""
        now_ms = int(time.time() * 1000)
        async with self.redis.pipeline(transaction=False) as pipe:
            for partition in range(PARTITIONS):
                await self._release_due(
                    keys=[keys.transcription_delayed(partition), keys.transcription_stream(partition)],
                    args=[now_ms], client=pipe)
            await pipe.execute()

    async def _release_delayed(self) -> None:
        while not self._stopping.is_set():
            await self._pause(0.5)
            try:
                await self.release_due()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis hiccup: try again next tick
                log.warning("releasing delayed transcription jobs failed", extra={"error": repr(exc)})
