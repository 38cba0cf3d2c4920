"""A UserStore reads and writes through its own clients, whatever else the process opens: a
second MongoDB or Redis client opened and closed elsewhere (another app in the same process,
a tool) must not take its models away from it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from api.dev_servers import EmbeddedServers
from bench.send_cost import counters_installed, counting
from storage.cold import UserDoc
from storage.connections import close_redis, open_mongo, open_redis
from storage.hot import UserHot
from storage.ids import new_id
from storage.users import UserStore
from tests.conftest import mongodb_url


async def test_a_store_keeps_its_own_clients_when_another_one_opens_and_closes(dev_servers: EmbeddedServers) -> None:
    database = f"users_{uuid.uuid4().hex[:8]}"
    mongo = await open_mongo(mongodb_url(dev_servers, database), database)
    redis = await open_redis(dev_servers.redis_url)
    try:
        users = UserStore(redis, mongo[database][UserDoc.Settings.name])
        first = await users.create(username=f"own{uuid.uuid4().hex[:8]}", email=f"{uuid.uuid4().hex[:8]}@example.com",
                                   password_hash="not-a-real-hash")
        other_database = f"other_{uuid.uuid4().hex[:8]}"
        other_mongo = await open_mongo(mongodb_url(dev_servers, other_database), other_database)
        other_redis = await open_redis(dev_servers.redis_url)
        await close_redis(other_redis)
        await other_mongo.drop_database(other_database)
        await other_mongo.close()

        credentials = await users.find_credentials(first.username)
        assert credentials is not None and credentials.user == first
        second = await users.create(username=f"own{uuid.uuid4().hex[:8]}", email=f"{uuid.uuid4().hex[:8]}@example.com",
                                    password_hash="not-a-real-hash")
        assert await mongo[database]["users"].count_documents({}) == 2
        assert (await users.get_many([first.id, second.id])).keys() == {first.id, second.id}
        await users.set_last_seen_many({first.id: 1_900_000_000_000})
        assert (await users.get(first.id)).last_seen_at is not None  # type: ignore[union-attr]  # created above
    finally:
        await close_redis(redis)
        await mongo.drop_database(database)
        await mongo.close()


async def test_restoring_the_user_mirrors_reads_the_users_in_one_query(dev_servers: EmbeddedServers) -> None:
    """After Redis lost its data, start-up copies every user back: one query read in batches (the
    MongoDB-wire server sorts a range anew for each query), and a missing mirror only."""
    database = f"users_{uuid.uuid4().hex[:8]}"
    mongo = await open_mongo(mongodb_url(dev_servers, database), database)
    redis = await open_redis(dev_servers.redis_url)
    now = datetime.now(UTC).replace(microsecond=0)
    unmirrored = [{"_id": new_id(), "username": f"u{n}", "username_lower": f"u{n}", "email": f"u{n}@example.com",
                   "email_lower": f"u{n}@example.com", "password_hash": "-", "created_at": now, "last_seen_at": None}
                  for n in range(1_100)]
    try:
        users = UserStore(redis, mongo[database][UserDoc.Settings.name])
        name = f"own{uuid.uuid4().hex[:8]}"
        mirrored = await users.create(username=name, email=f"{name}@example.com", password_hash="not-a-real-hash")
        await users.collection.insert_many(unmirrored)
        with counters_installed(), counting() as tally:
            assert await users.reconcile_mirror(batch_size=500) == 1_100
        assert tally.mongo.count("find") == 1
        restored = await users.get_many([u["_id"] for u in unmirrored[::100]] + [mirrored.id])
        assert {u.username for u in restored.values()} == {f"u{n}" for n in range(0, 1_100, 100)} | {mirrored.username}
    finally:
        await redis.delete(*[UserHot.make_primary_key(u["_id"]) for u in unmirrored])
        await close_redis(redis)
        await mongo.drop_database(database)
        await mongo.close()
