"""A UserStore reads and writes through its own clients, whatever else the process opens: a
second MongoDB or Redis client opened and closed elsewhere (another app in the same process,
a tool) must not take its models away from it."""

from __future__ import annotations

import uuid

from api.dev_servers import EmbeddedServers
from storage.cold import UserDoc
from storage.connections import close_redis, open_mongo, open_redis
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
