"""The backlog gauges' rules, in-process on a Redis of the test's own: what counts as waiting in
the outbox and the transcription queue, and how old it is (by Redis's clock). The two-worker
end-to-end version is tests/api/test_metrics_workers.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families

from api.dev_servers import start_redis
from storage import keys
from storage.backlog import Backlog, BacklogReader
from tests.utils.in_process import InProcessApp, InProcessApps

ROUNDING = 0.002  # entry ids and TIME are read in whole ms


@pytest.fixture
async def redis(tmp_path: Path) -> AsyncIterator[aioredis.Redis]:
    server = start_redis(tmp_path / "redis")
    client = aioredis.Redis.from_url(server.url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()  # type: ignore[attr-defined]  # redis 5+; types-redis describes 4.6
        server.stop()


async def redis_ms(redis: aioredis.Redis) -> int:
    seconds, micros = await redis.time()
    return int(seconds) * 1000 + int(micros) // 1000


async def test_nothing_waiting_reads_zero(redis: aioredis.Redis) -> None:
    assert await BacklogReader(redis).read() == Backlog(0, 0.0, 0, 0, 0.0)


async def test_pending_and_unread_entries_all_wait_and_the_oldest_sets_the_lag(redis: aioredis.Redis) -> None:
    now = await redis_ms(redis)
    oldest, newer = now - 7000, now - 2000
    await redis.xgroup_create(keys.outbox_stream(3), keys.OUTBOX_GROUP, id="0", mkstream=True)
    await redis.xadd(keys.outbox_stream(3), {"id": "a"}, id=f"{oldest}-0")
    await redis.xadd(keys.outbox_stream(3), {"id": "b"}, id=f"{newer}-0")
    await redis.xadd(keys.outbox_stream(12), {"id": "c"}, id=f"{newer}-1")
    # The oldest is handed to a persister that has not acknowledged it (pending): still waiting.
    await redis.xreadgroup(keys.OUTBOX_GROUP, "persister-1", {keys.outbox_stream(3): ">"}, count=1)
    backlog = await BacklogReader(redis).read()
    after = await redis_ms(redis)
    assert backlog.outbox_entries == 3
    assert (now - oldest) / 1000 - ROUNDING <= backlog.outbox_lag_seconds <= (after - oldest) / 1000 + ROUNDING
    # An entry acknowledged is deleted with it (storage/outbox.py): the lag moves to the next.
    await redis.xack(keys.outbox_stream(3), keys.OUTBOX_GROUP, f"{oldest}-0")
    await redis.xdel(keys.outbox_stream(3), f"{oldest}-0")
    backlog = await BacklogReader(redis).read()
    assert backlog.outbox_entries == 2
    assert backlog.outbox_lag_seconds <= (await redis_ms(redis) - newer) / 1000 + ROUNDING
    assert backlog.transcription_queued == backlog.transcription_delayed == 0


async def test_a_delayed_job_waits_from_its_retry_time_on(redis: aioredis.Redis) -> None:
    now = await redis_ms(redis)
    queued_at = now - 3000
    await redis.xadd(keys.transcription_stream(5), {"id": "m1", "conversation": "c", "attempt": "1"},
                     id=f"{queued_at}-0")
    await redis.zadd(keys.transcription_delayed(9), {"m2:c:2": now + 60_000})  # backing off: not late
    backlog = await BacklogReader(redis).read()
    after = await redis_ms(redis)
    assert (backlog.transcription_queued, backlog.transcription_delayed) == (1, 1)
    assert (now - queued_at) / 1000 - ROUNDING <= backlog.transcription_oldest_seconds \
        <= (after - queued_at) / 1000 + ROUNDING
    # A retry overdue for longer than the queued job has waited (no worker releases it).
    overdue = now - 10_000
    await redis.zadd(keys.transcription_delayed(14), {"m3:c:2": overdue})
    backlog = await BacklogReader(redis).read()
    assert (backlog.transcription_queued, backlog.transcription_delayed) == (1, 2)
    assert backlog.transcription_oldest_seconds >= (now - overdue) / 1000 - ROUNDING
    assert backlog.outbox_entries == 0 and backlog.outbox_lag_seconds == 0


@pytest.fixture(scope="module")
async def app(in_process_apps: InProcessApps) -> InProcessApp:
    return await in_process_apps.start()


async def test_metrics_shows_the_backlog_once(app: InProcessApp) -> None:
    redis = aioredis.Redis.from_url(app.redis_url, decode_responses=True)
    try:
        now = await redis_ms(redis)
        # Jobs of messages that do not exist: the worker drops them, so wait for no worker.
        await redis.zadd(keys.transcription_delayed(2), {"gone:c:2": now + 600_000})
        async with app.client() as gql:
            text = (await gql.client.get("/metrics")).text
    finally:
        await redis.aclose()  # type: ignore[attr-defined]  # redis 5+; types-redis describes 4.6
    samples = [(s.name, s.labels, s.value) for f in text_string_to_metric_families(text) for s in f.samples
               if s.name.startswith(("chattergram_outbox", "chattergram_transcription"))]
    assert sorted(samples, key=str) == sorted([
        ("chattergram_outbox_lag_seconds", {}, 0.0),
        ("chattergram_outbox_backlog", {}, 0.0),
        ("chattergram_transcription_queue_depth", {"state": "queued"}, 0.0),
        ("chattergram_transcription_queue_depth", {"state": "delayed"}, 1.0),
        ("chattergram_transcription_oldest_job_seconds", {}, 0.0),
    ], key=str)
