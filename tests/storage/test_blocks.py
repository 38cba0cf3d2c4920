"""Blocks: MongoDB holds them, Redis a per-user copy rebuilt from it, each process a cache that
other instances' changes reach over pub/sub."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime

import pytest

from storage import keys
from storage.blocks import BlockLimitReached, BlockStore
from storage.ids import new_id
from storage.pubsub import PubSubHub
from tests.storage.conftest import MessageStores

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class Instances:
    """Block stores of several API instances on one Redis and one MongoDB."""

    def __init__(self, stores: MessageStores, stack: AsyncExitStack) -> None:
        self.stores = stores
        self.stack = stack

    async def start(self, *, max_blocks: int = 1000, cache_seconds: float = 3600) -> BlockStore:
        hub = PubSubHub(self.stores.redis)
        hub.start()
        self.stack.push_async_callback(hub.stop)
        store = BlockStore(self.stores.redis, self.stores.archive.collection.database["blocks"], hub,
                           max_blocks=max_blocks, cache_seconds=cache_seconds)
        await store.create_indexes()
        store.start()
        self.stack.push_async_callback(store.stop)
        return store


@pytest.fixture
async def instances(message_stores: MessageStores) -> AsyncIterator[Instances]:
    async with AsyncExitStack() as stack:
        yield Instances(message_stores, stack)


async def blocked(store: BlockStore, user_id: str) -> frozenset[str]:
    return (await store.blocking_of_many([user_id]))[user_id]


async def test_block_and_unblock_are_idempotent_and_read_back(instances: Instances) -> None:
    store = await instances.start()
    alice, bob, carol = new_id(), new_id(), new_id()
    assert await blocked(store, alice) == frozenset()
    assert await store.block(alice, bob, NOW) is True
    assert await store.block(alice, bob, NOW) is False
    assert await store.block(alice, carol, NOW) is True
    assert await blocked(store, alice) == {bob, carol}
    assert await blocked(store, bob) == frozenset()  # only what a user blocked is kept per user
    assert await store.hidden_from(bob, [alice, carol]) == {alice}
    assert await store.hidden_from(alice, [bob, carol, alice]) == {bob, carol}
    assert await store.unblock(alice, bob) is True
    assert await store.unblock(alice, bob) is False
    assert await blocked(store, alice) == {carol}
    assert [b.blocked_id for b in await store.blocks_of(alice)] == [carol]


async def test_the_cap_counts_distinct_blocks(instances: Instances) -> None:
    store = await instances.start(max_blocks=2)
    alice, bob, carol, dave = new_id(), new_id(), new_id(), new_id()
    await store.block(alice, bob, NOW)
    await store.block(alice, carol, NOW)
    assert await store.block(alice, bob, NOW) is False  # blocking again is no new block
    with pytest.raises(BlockLimitReached):
        await store.block(alice, dave, NOW)
    await store.unblock(alice, bob)
    assert await store.block(alice, dave, NOW) is True


async def test_a_lost_redis_copy_is_rebuilt_from_mongodb(instances: Instances) -> None:
    writer, alice, bob = await instances.start(), new_id(), new_id()
    await writer.block(alice, bob, NOW)
    await instances.stores.redis.delete(keys.blocking(alice), keys.blocking_changes(alice))
    reader = await instances.start()  # a process that remembers nothing
    assert await blocked(reader, alice) == {bob}
    assert await instances.stores.redis.smembers(keys.blocking(alice)) == {"_", bob}


async def test_a_rebuild_that_read_mongodb_before_a_change_is_dropped(instances: Instances) -> None:
    store, alice, bob = await instances.start(), new_id(), new_id()
    redis = instances.stores.redis
    counter_before = await redis.get(keys.blocking_changes(alice))
    await store.block(alice, bob, NOW)  # lands between the rebuild's counter read and its write
    await store._build(keys=[keys.blocking(alice), keys.blocking_changes(alice)],
                       args=[counter_before or "", 60])  # what a rebuild that missed the block writes
    assert await redis.exists(keys.blocking(alice)) == 0  # dropped: the next read rebuilds it
    assert await blocked(await instances.start(), alice) == {bob}


async def test_another_instance_forgets_its_cached_copy_when_told(instances: Instances) -> None:
    first, second = await instances.start(), await instances.start()  # caches never expire here
    alice, bob = new_id(), new_id()
    assert await blocked(second, alice) == frozenset()  # now cached by the second instance
    await first.block(alice, bob, NOW)
    deadline = time.monotonic() + 10
    while await blocked(second, alice) != {bob}:
        assert time.monotonic() < deadline, "the block notice never reached the other instance"
        await asyncio.sleep(0.02)
    await first.unblock(alice, bob)
    while await blocked(second, alice) != frozenset():
        assert time.monotonic() < deadline, "the unblock notice never reached the other instance"
        await asyncio.sleep(0.02)


async def test_a_cached_copy_outlives_the_cache_period_while_the_notices_echo(instances: Instances) -> None:
    store, alice = await instances.start(cache_seconds=0.4), new_id()
    await asyncio.sleep(1.0)  # the notices channel is subscribed and echoing
    await instances.stores.redis.config_resetstat()
    assert await blocked(store, alice) == frozenset()
    await asyncio.sleep(2.0)  # five cache periods
    assert await blocked(store, alice) == frozenset()
    stats = await instances.stores.redis.info("commandstats")
    assert stats["cmdstat_smembers"]["calls"] == 1  # read once


async def test_concurrent_readers_of_one_user_share_one_redis_read(instances: Instances) -> None:
    store, alice = await instances.start(), new_id()
    await instances.stores.redis.config_resetstat()
    await asyncio.gather(*(blocked(store, alice) for _ in range(20)))
    stats = await instances.stores.redis.info("commandstats")
    assert stats["cmdstat_smembers"]["calls"] == 1


async def test_when_mongodb_fails_an_unknown_copy_counts_as_none_and_is_asked_again(instances: Instances) -> None:
    """Sends need only Redis: MongoDB failing (down, or as here refusing the read: the same
    PyMongoError family, without sockets left to a dead port) must not stop them."""
    writer, alice, bob = await instances.start(), new_id(), new_id()
    await writer.block(alice, bob, NOW)  # the Redis copy is dropped; MongoDB has the block
    reader = await instances.start()
    working = reader.collection
    reader.collection = working.database.client["x" * 100]["blocks"]  # the server refuses the name
    assert await blocked(reader, alice) == frozenset()
    reader.collection = working  # MongoDB answers again: nothing of the guess was remembered
    assert await blocked(reader, alice) == {bob}
