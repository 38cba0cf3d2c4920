"""The pipelined presence heartbeat keeps every local connection online past its TTL, and never
brings back a connection that closed while its beat was on the way."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from redis.asyncio.client import Pipeline

from api.dev_servers import EmbeddedServers
from storage import keys
from storage.connections import open_redis
from storage.presence import PresenceChange, PresenceTracker
from storage.users import StoredUser
from tests.storage.conftest import MessageStores


async def test_heartbeat_refreshes_every_connection_in_chunks(dev_servers: EmbeddedServers) -> None:
    redis = await open_redis(dev_servers.redis_url)
    try:
        tracker = PresenceTracker(redis, ttl_seconds=1.0, heartbeat_seconds=3600)  # beats by hand
        people = [f"hb-{uuid.uuid4().hex}" for _ in range(5)]
        for person in people:
            await tracker.connect(person)
        await asyncio.sleep(0.6)
        await tracker.heartbeat(chunk=2)  # three pipelines: 2 + 2 + 1 connections
        await asyncio.sleep(0.6)  # past the first TTL, within the refreshed one
        assert await tracker.online_among(people) == set(people)
        await asyncio.sleep(1.0)  # no more beats: everyone's entry expires
        assert await tracker.online_among(people) == set()
    finally:
        await redis.aclose()


async def test_a_heartbeat_reaching_redis_after_the_disconnect_adds_nothing_back(
    dev_servers: EmbeddedServers, monkeypatch: pytest.MonkeyPatch
) -> None:
    redis = await open_redis(dev_servers.redis_url)
    try:
        tracker = PresenceTracker(redis, ttl_seconds=30, heartbeat_seconds=3600)  # beats by hand
        person = f"hb-{uuid.uuid4().hex}"
        connection = await tracker.connect(person)
        execute = Pipeline.execute

        async def disconnect_first(self: Pipeline, *args: Any, **kwargs: Any) -> Any:
            await tracker.disconnect(person, connection)  # the close overtakes the queued beat
            return await execute(self, *args, **kwargs)

        monkeypatch.setattr(Pipeline, "execute", disconnect_first)
        await tracker.heartbeat()
        monkeypatch.undo()
        assert await tracker.online_among([person]) == set()
        assert tracker.local_connections == 0
        await tracker.heartbeat()  # nothing left to beat
        assert await tracker.online_among([person]) == set()
    finally:
        await redis.aclose()


async def test_a_connection_swept_while_still_open_is_registered_again(message_stores: MessageStores) -> None:
    """This instance stalled past the TTL and another swept its connection: the next beat brings
    the user back online, with the profile on the online event."""
    redis = message_stores.redis
    tracker = PresenceTracker(redis, ttl_seconds=0.3, heartbeat_seconds=3600)  # beats by hand
    person = StoredUser(id=f"hb-{uuid.uuid4().hex}", username="stalled", created_at=datetime.now(UTC),
                        last_seen_at=None)
    await tracker.connect(person.id, person)
    await asyncio.sleep(0.4)
    assert await tracker.sweep() == [person.id]
    async with redis.pubsub() as events:
        await events.subscribe(keys.PRESENCE_CHANNEL)
        await tracker.heartbeat()
        message = None
        while message is None or message["type"] != "message":
            message = await events.get_message(timeout=2)
    assert await tracker.online_among([person.id]) == {person.id}
    change = PresenceChange.decode(message["data"])
    assert (change.online, change.user) == (True, person)
