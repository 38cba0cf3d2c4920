"""Work waiting in Redis, read for the metrics: the outbox (changes not yet in MongoDB) and the
transcription queue, over every partition in one pipelined round-trip.

The persister and the transcription worker acknowledge AND delete an entry in one MULTI
(storage/outbox.py, transcription/worker.py), so a stream holds exactly the entries not yet
done: those never handed out and those pending in the consumer group alike. Its length is the
backlog and its first entry the oldest; an entry id starts with Redis's clock in ms, and the
ages are taken against Redis's own clock (TIME, in the same round-trip), never the app's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

from storage import keys
from storage.slots import PARTITIONS


@dataclass(frozen=True, slots=True)
class Backlog:
    outbox_entries: int
    outbox_lag_seconds: float  # age of the oldest entry; 0 when none
    transcription_queued: int  # jobs in the streams: waiting for a worker or being transcribed
    transcription_delayed: int  # failed attempts waiting for their retry time
    transcription_oldest_seconds: float  # the longest a job has waited; 0 when none


def entry_ms(entry_id: str | bytes) -> int:
    """The time (ms) in a stream entry id `<ms>-<seq>`."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-", 1)[0])


def _oldest_ms(firsts: Sequence[list[tuple[str, object]]]) -> int | None:
    times = [entry_ms(entries[0][0]) for entries in firsts if entries]
    return min(times) if times else None


def _age_seconds(now_ms: int, since_ms: int | None) -> float:
    return max(now_ms - since_ms, 0) / 1000 if since_ms is not None else 0.0


class BacklogReader:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def read(self) -> Backlog:
        """One pipeline of single-key commands (Redis Cluster splits it by node): XLEN and the
        first entry of each stream, ZCARD and the earliest due job of each delayed set."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.time()
            for partition in range(PARTITIONS):
                for stream in (keys.outbox_stream(partition), keys.transcription_stream(partition)):
                    pipe.xlen(stream)
                    pipe.xrange(stream, count=1)
                delayed = keys.transcription_delayed(partition)
                pipe.zcard(delayed)
                pipe.zrange(delayed, 0, 0, withscores=True)
            (seconds, micros), *replies = await pipe.execute()
        now_ms = seconds * 1000 + micros // 1000
        outbox_lengths, outbox_firsts = replies[0::6], replies[1::6]
        queue_lengths, queue_firsts = replies[2::6], replies[3::6]
        delayed_counts, earliest_due = replies[4::6], replies[5::6]
        # A delayed job waits from its due time on (before it, it is not late: it is backing off).
        due = [int(jobs[0][1]) for jobs in earliest_due if jobs and int(jobs[0][1]) <= now_ms]
        waiting_since = [t for t in (_oldest_ms(queue_firsts), min(due, default=None)) if t is not None]
        return Backlog(
            outbox_entries=sum(outbox_lengths),
            outbox_lag_seconds=_age_seconds(now_ms, _oldest_ms(outbox_firsts)),
            transcription_queued=sum(queue_lengths),
            transcription_delayed=sum(delayed_counts),
            transcription_oldest_seconds=_age_seconds(now_ms, min(waiting_since, default=None)),
        )
