"""The transcription queue: a Redis Stream consumed by a consumer group, so every API
instance can work on it and a job survives a crash (pending entries of a dead worker are
taken over once idle; a live worker keeps its entries fresh while it transcribes).

Failures are retried with exponential backoff through a delayed-job sorted set; after
the last attempt the message is marked FAILED, with the reason in the log. A MongoDB error
while reading the audio is not the job's fault: the same attempt is retried with backoff.
A job whose workers died `max_deliveries` times (the stream's delivery count) is FAILED.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from gridfs import NoFile
from pymongo.errors import PyMongoError
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from storage import keys
from storage.audio import AudioStore
from storage.background import cancel_and_wait
from storage.messages import MessageStore
from storage.outbox import consumer_name
from storage.records import StoredMessage, StoredTranscript, StoredWord, next_revision
from transcription.base import Transcriber, TranscriptionFailed, TranscriptResult

log = logging.getLogger(__name__)

# Moves due delayed jobs ("id:attempt" or "id:attempt:read_failures") onto the stream,
# atomically (several instances run this).
_RELEASE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 100)
for _, job in ipairs(due) do
  local id, attempt, reads = string.match(job, '^([^:]+):([^:]+):?(.*)$')
  if reads == '' then
    redis.call('XADD', KEYS[2], '*', 'id', id, 'attempt', attempt)
  else
    redis.call('XADD', KEYS[2], '*', 'id', id, 'attempt', attempt, 'read_failures', reads)
  end
  redis.call('ZREM', KEYS[1], job)
end
return #due
"""
# Longest wait between retries of an audio read (MongoDB down): it comes back, keep trying.
MAX_READ_RETRY_SECONDS = 60.0


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
        self.consumer = consumer_name()
        self._release_due = redis.register_script(_RELEASE_DUE)
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def _ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(keys.TRANSCRIPTION_STREAM, keys.TRANSCRIPTION_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def start(self) -> None:
        await self._ensure_group()
        self._tasks = [asyncio.create_task(self._consume(), name=f"transcriber-{i}") for i in range(self.concurrency)]
        self._tasks.append(asyncio.create_task(self._release_delayed(), name="transcriber-delayed"))

    async def stop(self, grace_seconds: float = 1.5) -> None:
        """Let each loop finish its blocking read (at most a second), then cancel what is left: a
        transcription in progress is taken over later, since its job stays unacknowledged."""
        self._stopping.set()
        if self._tasks:
            _, running = await asyncio.wait(self._tasks, timeout=grace_seconds)
            await cancel_and_wait(running)

    async def _consume(self) -> None:
        backoff = 0.2
        while not self._stopping.is_set():
            try:
                entries = await self._next_entries()
                for entry_id, fields in entries:
                    await self._handle(entry_id, fields)
                backoff = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis/MongoDB hiccup: wait and retry
                log.warning("transcription worker error", extra={"error": repr(exc)})
                if "NOGROUP" in str(exc):  # Redis lost its data: the group must be made again
                    with contextlib.suppress(Exception):
                        await self._ensure_group()
                await self._pause(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _next_entries(self) -> list[tuple[str, dict[str, str] | None]]:
        _, claimed, *_ = await self.redis.xautoclaim(
            keys.TRANSCRIPTION_STREAM, keys.TRANSCRIPTION_GROUP, self.consumer,
            min_idle_time=self.claim_idle_ms, start_id="0-0", count=1,
        )
        if claimed:
            entry_id, fields = claimed[0]
            deliveries = await self._deliveries(entry_id)
            if deliveries > self.max_deliveries:
                await self._give_up(entry_id, fields, deliveries)
                return []
            log.info("took over a transcription job of a dead worker",
                     extra={"entry": entry_id, "deliveries": deliveries})
            return [(entry_id, fields)]
        response = await self.redis.xreadgroup(
            keys.TRANSCRIPTION_GROUP, self.consumer, {keys.TRANSCRIPTION_STREAM: ">"}, count=1, block=1000
        )
        return list(response[0][1]) if response else []

    async def _deliveries(self, entry_id: str) -> int:
        """How often the entry was handed out (XAUTOCLAIM counts its own claim)."""
        pending = await self.redis.xpending_range(
            keys.TRANSCRIPTION_STREAM, keys.TRANSCRIPTION_GROUP, min=entry_id, max=entry_id, count=1
        )
        return int(pending[0]["times_delivered"]) if pending else 0

    async def _give_up(self, entry_id: str, fields: dict[str, str] | None, deliveries: int) -> None:
        """A job that kills its worker every time (say, audio that crashes the decoder) must
        not be taken over forever: FAILED, reason in the log."""
        if fields:
            reason = f"its worker died {deliveries - 1} times"
            log.error("transcription failed", extra={"message_id": fields["id"], "reason": reason})
            await self._mark_failed(fields["id"])
        await self._ack(entry_id)

    async def _handle(self, entry_id: str, fields: dict[str, str] | None) -> None:
        if fields:
            keep_fresh = asyncio.create_task(self._keep_claimed(entry_id))
            try:
                await self.process(fields["id"], int(fields.get("attempt", "1")),
                                   read_failures=int(fields.get("read_failures", "0")))
            finally:
                keep_fresh.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keep_fresh
        await self._ack(entry_id)

    async def _ack(self, entry_id: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(keys.TRANSCRIPTION_STREAM, keys.TRANSCRIPTION_GROUP, entry_id)
            pipe.xdel(keys.TRANSCRIPTION_STREAM, entry_id)
            await pipe.execute()

    async def _keep_claimed(self, entry_id: str) -> None:
        """Reset the entry's idle time while we work, so no one takes a live job over."""
        interval = max(self.claim_idle_ms / 3000, 0.5)
        while True:
            await asyncio.sleep(interval)
            await self.redis.xclaim(
                keys.TRANSCRIPTION_STREAM, keys.TRANSCRIPTION_GROUP, self.consumer, 0, [entry_id], justid=True
            )

    async def process(self, message_id: str, attempt: int, *, read_failures: int = 0) -> None:
        message = await self.messages.find(message_id)
        if message is None or message.audio is None or message.transcription_status != "PENDING":
            return  # gone, or already settled (a duplicate job)
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
        current = await self.messages.find(message.id)
        if current is None or current.transcription_status != "PENDING":
            return
        transcript = StoredTranscript(
            text=result.text, engine=result.engine, confidence=result.confidence, language=result.language,
            words=tuple(StoredWord(w.word, w.start, w.end, w.confidence) for w in result.words),
        )
        done = next_revision(current, text=result.text, transcription_status="DONE", transcript=transcript)
        await self.messages.update(done)

    async def _failed(self, message: StoredMessage, attempt: int, reason: str, *, retryable: bool) -> None:
        if retryable and attempt < self.max_attempts:
            delay = self.retry_base_seconds * 2 ** (attempt - 1)
            log.warning("transcription failed, will retry", extra={
                "message_id": message.id, "attempt": attempt, "reason": reason, "retry_in_s": delay})
            due_ms = int((time.time() + delay) * 1000)
            await self.redis.zadd(keys.TRANSCRIPTION_DELAYED, {f"{message.id}:{attempt + 1}": due_ms})
            return
        log.error("transcription failed", extra={"message_id": message.id, "attempt": attempt, "reason": reason})
        await self._mark_failed(message.id)

    async def _mark_failed(self, message_id: str) -> None:
        current = await self.messages.find(message_id)
        if current is None or current.transcription_status != "PENDING":
            return
        await self.messages.update(next_revision(current, transcription_status="FAILED"))

    async def _retry_read(self, message: StoredMessage, attempt: int, read_failures: int, exc: Exception) -> None:
        """MongoDB could not hand over the audio: the same attempt again later, waiting longer each time."""
        delay = min(self.retry_base_seconds * 2 ** read_failures, MAX_READ_RETRY_SECONDS)
        log.warning("reading the audio failed, will retry the same attempt", extra={
            "message_id": message.id, "attempt": attempt, "error": repr(exc), "retry_in_s": delay})
        due_ms = int((time.time() + delay) * 1000)
        await self.redis.zadd(keys.TRANSCRIPTION_DELAYED, {f"{message.id}:{attempt}:{read_failures + 1}": due_ms})

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when asked to stop."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()

    async def release_due(self) -> None:
        """Move the delayed jobs that are due onto the stream."""
        await self._release_due(keys=[keys.TRANSCRIPTION_DELAYED, keys.TRANSCRIPTION_STREAM],
                                args=[int(time.time() * 1000)])

    async def _release_delayed(self) -> None:
        while not self._stopping.is_set():
            await self._pause(0.5)
            try:
                await self.release_due()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis hiccup: try again next tick
                log.warning("releasing delayed transcription jobs failed", extra={"error": repr(exc)})
