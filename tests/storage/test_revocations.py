"""RevocationStore on a Redis of its own and a fresh database: MongoDB keeps the user-level
revocation, so a Redis that lost its data (or its expired copy) does not bring tokens back."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from api.dev_servers import EmbeddedServers, start_redis
from storage import keys
from storage.connections import open_mongo, open_redis
from storage.pubsub import PubSubHub
from storage.revocations import Revocation, RevocationStore
from tests.conftest import mongodb_url


@pytest.fixture
async def stores(dev_servers: EmbeddedServers, tmp_path: Path) -> AsyncIterator[tuple[Redis, Any]]:
    redis_server = start_redis(tmp_path / "redis")
    database = f"revocations_{uuid.uuid4().hex[:8]}"
    mongo = await open_mongo(mongodb_url(dev_servers, database), database)
    redis = await open_redis(redis_server.url)
    try:
        yield redis, mongo[database]["users"]
    finally:
        await redis.aclose()
        await mongo.drop_database(database)
        await mongo.close()
        redis_server.stop()


def _store(redis: Redis, users: Any, cache_seconds: float = 5.0) -> RevocationStore:
    """A fresh process's store: nothing cached."""
    return RevocationStore(redis, users, PubSubHub(redis), token_ttl_seconds=3600, cache_seconds=cache_seconds)


async def test_a_user_level_revocation_survives_redis_losing_its_data(stores: tuple[Redis, Any]) -> None:
    redis, users = stores
    await users.insert_one({"_id": "u1", "password_hash": "h"})
    assert await _store(redis, users).revoke_all("u1") == 1

    await redis.flushdb()  # Redis lost everything (a test Redis of its own)

    fresh = _store(redis, users)
    assert await fresh.is_revoked("u1", "0.a", 0)  # issued before the revocation
    assert not await fresh.is_revoked("u1", "1.b", 1)  # issued after
    assert await redis.get(keys.token_generation("u1")) == "1"  # restored from MongoDB


async def test_the_generation_never_moves_back(stores: tuple[Redis, Any]) -> None:
    redis, users = stores
    await users.insert_one({"_id": "u2", "password_hash": "h"})
    store = _store(redis, users)
    assert [await store.revoke_all("u2") for _ in range(3)] == [1, 2, 3]
    await redis.set(keys.token_generation("u2"), "1")  # a stale writer
    assert await _store(redis, users).generation("u2") == 1  # what Redis says, until restored
    await redis.delete(keys.token_generation("u2"))
    assert await _store(redis, users).generation("u2") == 3


async def test_a_logged_out_token_is_revoked_for_its_remaining_lifetime_only(stores: tuple[Redis, Any]) -> None:
    redis, users = stores
    await users.insert_one({"_id": "u3", "password_hash": "h"})
    await _store(redis, users).revoke_token("u3", "0.t", datetime.now(UTC) + timedelta(seconds=30))
    ttl = await redis.pttl(keys.revoked_token("u3", "0.t"))
    assert 25_000 < ttl <= 30_000
    fresh = _store(redis, users)
    assert await fresh.is_revoked("u3", "0.t", 0)
    assert not await fresh.is_revoked("u3", "0.other", 0)


async def test_a_valid_token_is_asked_about_once_per_cache_period(stores: tuple[Redis, Any]) -> None:
    redis, users = stores
    await users.insert_one({"_id": "u4", "password_hash": "h"})
    reader, writer = _store(redis, users, cache_seconds=60), _store(redis, users)
    assert not await reader.is_revoked("u4", "0.t", 0)
    assert reader.known_revoked("u4", "0.t", 0) is False  # cached: no round-trip
    await writer.revoke_token("u4", "0.t", datetime.now(UTC) + timedelta(minutes=5))
    # Another process revoked it; without the pub/sub notice this one trusts its cache...
    assert not await reader.is_revoked("u4", "0.t", 0)
    # ...until the notice is applied (what `notices()` does for every instance).
    reader._apply(Revocation(user_id="u4", token_id="0.t"))
    assert await reader.is_revoked("u4", "0.t", 0)


async def test_notices_outlive_a_lost_pubsub_connection(stores: tuple[Redis, Any]) -> None:
    redis, users = stores
    await users.insert_one({"_id": "u5", "password_hash": "h"})
    hub = PubSubHub(redis)
    hub.start()
    reader = RevocationStore(redis, users, hub, token_ttl_seconds=3600, cache_seconds=60)
    writer = _store(redis, users)
    received: list[Revocation] = []

    async def listen() -> None:
        async for notice in reader.notices():
            received.append(notice)

    listener = asyncio.create_task(listen())
    try:
        async def wait_until(condition: Callable[[], bool]) -> None:
            async with asyncio.timeout(10):
                while not condition():
                    await asyncio.sleep(0.02)

        async def listening() -> bool:
            [(_, count)] = await redis.pubsub_numsub(keys.REVOCATIONS_CHANNEL)
            return bool(count)

        async with asyncio.timeout(10):
            while not await listening():
                await asyncio.sleep(0.02)
        assert not await reader.is_revoked("u5", "0.t", 0)  # cached as valid
        await redis.client_kill_filter(_type="pubsub")  # the hub ends every open subscription
        async with asyncio.timeout(10):
            while not await listening():  # the listener subscribed again
                await asyncio.sleep(0.02)
        assert not listener.done()
        await writer.revoke_token("u5", "0.t", datetime.now(UTC) + timedelta(minutes=5))
        await wait_until(lambda: len(received) == 1)
        assert await reader.is_revoked("u5", "0.t", 0)
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
        await hub.stop()


@contextlib.asynccontextmanager
async def _listening(redis: Redis, users: Any, cache_seconds: float) -> AsyncIterator[RevocationStore]:
    """A process's store whose revocation notices are being applied (as the API's watcher does),
    once the notices channel has echoed: from then on it vouches for the cache."""
    hub = PubSubHub(redis)
    hub.start()
    store = RevocationStore(redis, users, hub, token_ttl_seconds=3600, cache_seconds=cache_seconds)

    async def listen() -> None:
        async for _ in store.notices():
            pass

    listener = asyncio.create_task(listen())
    try:
        async with asyncio.timeout(10):  # an echo sent after a moment vouches for a read at it
            while True:
                moment = time.monotonic()
                await asyncio.sleep(0.3)
                if store._notices is not None and store._notices.current_until(moment) > moment:
                    break
        yield store
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
        await hub.stop()


async def test_a_valid_token_is_not_asked_about_again_while_the_notices_echo(stores: tuple[Redis, Any]) -> None:
    redis, users = stores
    await users.insert_one({"_id": "u6", "password_hash": "h"})
    async with _listening(redis, users, cache_seconds=0.4) as reader:
        assert not await reader.is_revoked("u6", "0.t", 0)
        await asyncio.sleep(2.0)  # five cache periods
        assert reader.known_revoked("u6", "0.t", 0) is False  # still answered without Redis
        await _store(redis, users).revoke_token("u6", "0.t", datetime.now(UTC) + timedelta(minutes=5))
        async with asyncio.timeout(10):  # the notice arrives
            while reader.known_revoked("u6", "0.t", 0) is not True:
                await asyncio.sleep(0.02)


async def test_a_pubsub_connection_that_stops_answering_stops_vouching_within_the_cache_period(
    stores: tuple[Redis, Any],
) -> None:
    redis, users = stores
    await users.insert_one({"_id": "u7", "password_hash": "h"})
    async with _listening(redis, users, cache_seconds=0.4) as reader:
        assert not await reader.is_revoked("u7", "0.t", 0)
        await asyncio.sleep(1.0)
        assert reader.known_revoked("u7", "0.t", 0) is False
        await redis.execute_command("CLIENT", "PAUSE", 1500, "ALL")  # Redis answers nobody: no echo
        await asyncio.sleep(0.8)
        assert reader.known_revoked("u7", "0.t", 0) is None  # Redis must be asked again
