"""lastSeenAt written in batches (a disconnect storm is one bulk write), never backwards."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from api.dev_servers import EmbeddedServers
from storage.cold import UserDoc
from storage.connections import open_mongo, open_redis
from storage.last_seen import LastSeenWriter
from storage.users import UserStore
from tests.conftest import mongodb_url

LATER_MS = 1_900_000_000_000
EARLIER_MS = 1_800_000_000_000


async def test_a_storm_of_offline_users_is_recorded_and_never_moves_backwards(dev_servers: EmbeddedServers) -> None:
    database = f"last_seen_{uuid.uuid4().hex[:8]}"
    mongo = await open_mongo(mongodb_url(dev_servers, database), database)
    redis = await open_redis(dev_servers.redis_url)
    try:
        users = UserStore(redis, mongo[database][UserDoc.Settings.name])
        tag = uuid.uuid4().hex[:8]
        created = [await users.create(username=f"ls{tag}{i}", email=f"ls{tag}{i}@example.com",
                                           password_hash="not-a-real-hash") for i in range(300)]
        writer = LastSeenWriter(users, interval_seconds=3600, max_batch=128)  # flushed by hand below
        for user in created:
            writer.record(user.id, LATER_MS)
        writer.record(created[0].id, EARLIER_MS)  # an older report in the same batch
        await writer.flush()

        later = datetime.fromtimestamp(LATER_MS / 1000, UTC)
        mirrored = await users.get_many([u.id for u in created])
        assert {u.last_seen_at for u in mirrored.values()} == {later}
        await users.set_last_seen_many({created[1].id: EARLIER_MS})  # arrives late, from another instance
        assert (await users.get(created[1].id)).last_seen_at == later  # type: ignore[union-attr]  # the user exists
    finally:
        await redis.aclose()
        await mongo.drop_database(database)
        await mongo.close()


async def test_shutdown_does_not_wait_for_a_mongodb_that_is_gone(dev_servers: EmbeddedServers, tmp_path) -> None:
    from api.dev_servers import start_mongo

    own_mongo = start_mongo(tmp_path / "mongo")
    mongo = await open_mongo(own_mongo.url, "last_seen_gone")
    redis = await open_redis(dev_servers.redis_url)
    try:
        users = UserStore(redis, mongo["last_seen_gone"][UserDoc.Settings.name])
        user = await users.create(username=f"gone{uuid.uuid4().hex[:8]}", email=f"g{uuid.uuid4().hex[:8]}@example.com",
                                       password_hash="not-a-real-hash")
        writer = LastSeenWriter(users, interval_seconds=3600)
        writer.record(user.id, LATER_MS)
        own_mongo.kill()
        # pymongo would wait 30 s to select a server; the writer gives up after its own bound.
        await asyncio.wait_for(writer.stop(timeout=1.0), 15)
    finally:
        await redis.aclose()
        await mongo.close()
        own_mongo.stop()
