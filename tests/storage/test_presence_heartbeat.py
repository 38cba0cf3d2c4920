"""The pipelined presence heartbeat keeps every local connection online past its TTL."""

from __future__ import annotations

import asyncio
import uuid

from api.dev_servers import EmbeddedServers
from storage.connections import open_redis
from storage.presence import PresenceTracker


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
