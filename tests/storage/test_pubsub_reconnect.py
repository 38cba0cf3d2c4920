"""PubSubHub against a real Redis of its own: when the process's one pub/sub connection is
lost, every subscription open at that moment ends with `PubSubConnectionLost` (events
published meanwhile may be gone), and subscriptions made afterwards receive events again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from api.dev_servers import start_redis
from storage.connections import open_redis
from storage.pubsub import QUEUE_SIZE, PubSubConnectionLost, PubSubHub, SubscriberTooSlow, SubscriptionInterrupted


@pytest.fixture
async def redis(tmp_path: Path) -> AsyncIterator[Redis]:
    server = start_redis(tmp_path / "redis")
    client = await open_redis(server.url)
    try:
        yield client
    finally:
        await client.aclose()
        server.stop()


@pytest.fixture
async def hub(redis: Redis) -> AsyncIterator[PubSubHub]:
    hub = PubSubHub(redis)
    hub.start()
    try:
        yield hub
    finally:
        await hub.stop()


async def _listening(redis: Redis, channel: str) -> None:
    async with asyncio.timeout(5):
        while (await redis.pubsub_numsub(channel))[0][1] < 1:
            await asyncio.sleep(0.01)


async def test_a_lost_connection_ends_every_open_subscription_and_later_ones_work(
    redis: Redis, hub: PubSubHub
) -> None:
    async with hub.subscribe("ch:a") as a, hub.subscribe("ch:a") as a2, hub.subscribe("ch:b") as b:
        events = {s: aiter(s) for s in (a, a2, b)}
        await _listening(redis, "ch:a")
        await _listening(redis, "ch:b")
        await redis.publish("ch:a", "before")
        assert await asyncio.wait_for(anext(events[a]), 5) == "before"

        assert await redis.client_kill_filter(_type="pubsub") == 1

        for subscription in (a, a2, b):
            with pytest.raises(PubSubConnectionLost) as ended:
                await asyncio.wait_for(anext(events[subscription]), 5)
            assert isinstance(ended.value, SubscriptionInterrupted)
    assert hub.local_subscriptions == 0

    async with hub.subscribe("ch:a") as again:
        await _listening(redis, "ch:a")
        await redis.publish("ch:a", "after")
        assert await asyncio.wait_for(anext(aiter(again)), 5) == "after"


async def test_while_redis_is_down_subscriptions_end_and_new_ones_are_told_to_retry(tmp_path: Path) -> None:
    server = start_redis(tmp_path / "redis")
    # No retries: the outage reaches the hub at once, not after redis-py's reconnect attempts.
    redis = Redis.from_url(server.url, decode_responses=True, retry=Retry(NoBackoff(), 0))
    hub = PubSubHub(redis)
    hub.start()
    try:
        async with hub.subscribe("ch:down") as subscription:
            await _listening(redis, "ch:down")
            server.stop()
            with pytest.raises(PubSubConnectionLost):
                await asyncio.wait_for(anext(aiter(subscription)), 5)
        with pytest.raises(PubSubConnectionLost):
            async with hub.subscribe("ch:down"):
                pass
        assert hub.local_subscriptions == 0

        server = start_redis(tmp_path / "redis", port=server.port)
        async with hub.subscribe("ch:down") as subscription, Redis.from_url(server.url) as admin:
            await _listening(admin, "ch:down")
            await admin.publish("ch:down", "back")
            assert await asyncio.wait_for(anext(aiter(subscription)), 5) == "back"
    finally:
        await hub.stop()
        await redis.aclose()
        server.stop()


async def test_a_subscriber_that_falls_behind_is_ended_with_a_resubscribe_signal(
    redis: Redis, hub: PubSubHub
) -> None:
    async with hub.subscribe("ch:slow") as slow:
        for n in range(QUEUE_SIZE + 1):
            slow.deliver(str(n))
        with pytest.raises(SubscriberTooSlow) as ended:
            await anext(aiter(slow))
        assert isinstance(ended.value, SubscriptionInterrupted)


async def test_a_hub_stopped_while_echoing_leaves_no_connection_behind(redis: Redis) -> None:
    """An echo about to be sent when the hub stops (or starts afresh) must not open a new
    connection on the pub/sub object just closed: nobody would ever close it."""
    pool = redis.connection_pool
    for _ in range(30):
        hub = PubSubHub(redis)
        hub.start()
        async with hub.subscribe("echoed", echo_seconds=0.001) as subscription:
            listening = asyncio.create_task(anext(aiter(subscription), None))
            await asyncio.sleep(0.01)
            await hub.stop()  # as at shutdown: the subscriber is still inside its block
            await asyncio.sleep(0.005)
        await asyncio.gather(listening, return_exceptions=True)
    await asyncio.sleep(0.05)
    assert not pool._in_use_connections  # type: ignore[attr-defined]  # a leaked one stays in use
