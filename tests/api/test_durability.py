"""No acknowledged message is ever lost: crashes, a MongoDB outage, a Redis restart, and
paging across the seam between the Redis hot window and the MongoDB archive."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pymongo
import pytest
import redis

from api.app_server import AppServer
from api.dev_servers import EmbeddedServers, start_mongo, start_redis
from storage import keys
from storage.ids import direct_conversation_id
from tests.conftest import SHARED_DATABASE, mongodb_url, shared_mongodb_url
from tests.utils.graphql import Account, GraphQLClient, all_history, register, send
from tests.utils.ws import MESSAGE_EVENTS, Socket, connect, user_channel, wait_for_subscribers

pytestmark = pytest.mark.slow  # started first by `make test` (tests/conftest.py)

MONGO_FAST_FAIL = "serverSelectionTimeoutMS=1500&connectTimeoutMS=1000"


async def send_many(gql: GraphQLClient, sender: Account, receiver: Account, count: int, prefix: str,
                    concurrency: int = 25) -> list[str]:
    """Send `count` messages (`concurrency` in flight); the acknowledged ids, in id (= time) order."""
    ids: list[str] = []
    for start in range(0, count, concurrency):
        batch = range(start, min(start + concurrency, count))
        results = await asyncio.gather(
            *[send(gql, sender, receiver, f"{prefix} {i}", client_id=f"{prefix}-{i}") for i in batch]
        )
        ids += [r["id"] for r in results]
    return sorted(ids)


CREATE_GROUP = "mutation C($input: CreateGroupInput!) { createGroup(input: $input) { id } }"
SEND_TO = "mutation S($input: SendMessageInput!) { sendMessage(input: $input) { id conversationId } }"
GROUP_HISTORY = "query H($c: ID!) { history(conversationId: $c, last: 200) { edges { node { id } } } }"


async def create_group(gql: GraphQLClient, owner: Account, *members: Account) -> str:
    data = await gql.ok(CREATE_GROUP, {"input": {"title": "durable", "memberIds": [m.id for m in members]}},
                        token=owner.token)
    return str(data["createGroup"]["id"])


async def send_to_group(gql: GraphQLClient, sender: Account, group: str, count: int, prefix: str,
                        concurrency: int = 25) -> list[str]:
    """Like `send_many`, into a group."""
    ids: list[str] = []
    for start in range(0, count, concurrency):
        results = await asyncio.gather(*[
            gql.ok(SEND_TO, {"input": {"conversationId": group, "text": f"{prefix} {i}", "clientId": f"{prefix}-{i}"}},
                   token=sender.token)
            for i in range(start, min(start + concurrency, count))
        ])
        ids += [r["sendMessage"]["id"] for r in results]
    return sorted(ids)


async def subscribe_as_clients_do(socket: Socket, redis_url: str, channel: str, attempts: int = 5) -> None:
    """Subscribe to MESSAGE_EVENTS until the server listens, subscribing again after a
    RESUBSCRIBE ending, as the API tells clients to (the instance may only now be noticing
    that its pub/sub connection died with the old Redis)."""
    for _ in range(attempts):
        op_id = await socket.subscribe(MESSAGE_EVENTS)
        try:
            await wait_for_subscribers(redis_url, channel, timeout=3)
            return
        except AssertionError:
            while (ended := await socket.next_message(timeout=5))["type"] != "complete":
                assert ended["id"] == op_id and ended["type"] in ("next", "data"), ended
                codes = [e["extensions"]["code"] for e in ended["payload"].get("errors", [])]
                assert codes == ["RESUBSCRIBE"], ended
    raise AssertionError(f"{channel}: never subscribed after {attempts} attempts")


def archived(url: str, database: str, ids: list[str]) -> list[str]:
    with pymongo.MongoClient(url, serverSelectionTimeoutMS=5000) as client:
        return [d["_id"] for d in client[database]["messages"].find({"_id": {"$in": ids}}, {"_id": 1})]


def archived_in(url: str, database: str, conversation_id: str) -> list[str]:
    """The ids MongoDB holds with this `conversation_id`."""
    with pymongo.MongoClient(url, serverSelectionTimeoutMS=5000) as client:
        return sorted(d["_id"] for d in client[database]["messages"].find({"conversation_id": conversation_id}))


async def wait_archived(url: str, database: str, ids: list[str], timeout: float = 60.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        found = await asyncio.to_thread(archived, url, database, ids)
        if len(set(found)) == len(ids) or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.25)


async def test_kill_9_right_after_the_last_ack_loses_nothing(
    app_factory: Callable[..., AppServer], dev_servers: EmbeddedServers
) -> None:
    server = app_factory(OUTBOX_CLAIM_IDLE_SECONDS="2").start()
    async with httpx.AsyncClient(timeout=30) as http:
        gql = GraphQLClient(http, server.graphql_url)
        alice, bob, carol = await register(gql), await register(gql), await register(gql)
        group = await create_group(gql, alice, bob, carol)
        direct, in_group = await asyncio.gather(send_many(gql, alice, bob, 300, "kill"),
                                                send_to_group(gql, carol, group, 200, "kill-group"))
        server.kill()
        ids = direct + in_group
        assert len(set(ids)) == 500
        server.start()
        found = await wait_archived(shared_mongodb_url(dev_servers), SHARED_DATABASE, ids)
        assert sorted(found) == sorted(ids), f"{len(set(found))} of 500 archived, no duplicates expected"
        assert archived_in(shared_mongodb_url(dev_servers), SHARED_DATABASE, group) == in_group
        assert archived_in(shared_mongodb_url(dev_servers), SHARED_DATABASE,
                           direct_conversation_id(alice.id, bob.id)) == direct
    server.stop()


async def test_mongodb_outage_messages_wait_in_redis_and_land_once(
    app_factory: Callable[..., AppServer], tmp_path: Path
) -> None:
    mongo = start_mongo(tmp_path / "mongo")
    own_redis = start_redis(tmp_path / "redis")
    port, url = mongo.port, mongo.url
    server = app_factory(redis_url=own_redis.url, mongodb_url=f"{url}?{MONGO_FAST_FAIL}",
                         OUTBOX_CLAIM_IDLE_SECONDS="2")
    try:
        server.start()
        async with httpx.AsyncClient(timeout=30) as http:
            gql = GraphQLClient(http, server.graphql_url)
            alice, bob, carol = await register(gql), await register(gql), await register(gql)
            group = await create_group(gql, alice, bob, carol)
            mongo.stop()
            ids = await send_many(gql, alice, bob, 150, "outage")  # every send succeeds
            in_group = await send_to_group(gql, carol, group, 50, "outage-group")
            # A first message to someone new makes a DIRECT conversation without MongoDB.
            new_direct = await send(gql, bob, carol, "new conversation during the outage")
            assert len(ids) == 150 and len(in_group) == 50
            # Reads keep working from the hot window while MongoDB is down.
            assert [m["id"] for m in await all_history(gql, alice, bob, page=200)] == ids
            history = (await gql.ok(GROUP_HISTORY, {"c": group}, token=bob.token))["history"]["edges"]
            assert [e["node"]["id"] for e in history] == in_group
            # A crash during the outage leaves entries pending on a dead consumer.
            server.kill()
            mongo = start_mongo(tmp_path / "mongo", port)
            server.start()
            everything = [*ids, *in_group, new_direct["id"]]
            found = await wait_archived(url, "chattergram", everything)
            assert sorted(found) == sorted(everything)
            assert len(found) == len(set(found)) == 201
            assert await asyncio.to_thread(archived_in, url, "chattergram", group) == in_group
            with pymongo.MongoClient(url, serverSelectionTimeoutMS=5000) as client:
                made = client["chattergram"]["conversations"].find_one(
                    {"_id": direct_conversation_id(bob.id, carol.id)})
            assert made is not None and made["kind"] == "DIRECT"
            assert sorted(m["user_id"] for m in made["members"]) == sorted([bob.id, carol.id])
    finally:
        server.stop()
        mongo.stop()
        own_redis.stop()


async def test_redis_restart_loses_nothing_and_live_events_resume(
    app_factory: Callable[..., AppServer], dev_servers: EmbeddedServers, tmp_path: Path
) -> None:
    own_redis = start_redis(tmp_path / "redis")
    server = app_factory(redis_url=own_redis.url, mongodb_url=mongodb_url(dev_servers, "durability_redis")).start()
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            gql = GraphQLClient(http, server.graphql_url)
            alice, bob, carol = await register(gql), await register(gql), await register(gql)
            group = await create_group(gql, alice, bob, carol)
            before = await send_many(gql, alice, bob, 100, "before")
            in_group = await send_to_group(gql, carol, group, 20, "before-group")
            own_redis.stop()
            own_redis = start_redis(tmp_path / "redis", own_redis.port)
            assert [m["id"] for m in await all_history(gql, alice, bob)] == before
            history = (await gql.ok(GROUP_HISTORY, {"c": group}, token=bob.token))["history"]["edges"]
            assert [e["node"]["id"] for e in history] == in_group
            async with connect(server.ws_url, bob.token) as bob_socket:
                await subscribe_as_clients_do(bob_socket, own_redis.url, user_channel(bob.id))
                after = await send(gql, alice, bob, "after the restart")
                event = (await bob_socket.next_payload())["data"]["messageEvents"]
                assert event["message"]["id"] == after["id"]
            found = await wait_archived(mongodb_url(dev_servers, "durability_redis"), "durability_redis",
                                        [*before, *in_group, after["id"]])
            assert len(set(found)) == 121
    finally:
        server.stop()
        own_redis.stop()


async def test_paging_runs_seamlessly_from_redis_into_mongodb(
    app_factory: Callable[..., AppServer], dev_servers: EmbeddedServers, tmp_path: Path
) -> None:
    # Its own Redis: the hot window is trimmed oldest first across all conversations, and
    # messages other tests archived in other databases must not hold it back.
    own_redis = start_redis(tmp_path / "redis")
    window_seconds = 6
    server = app_factory(
        redis_url=own_redis.url,
        mongodb_url=mongodb_url(dev_servers, "durability_seam"),
        HOT_WINDOW_DAYS=str(window_seconds / 86400),
        HOT_WINDOW_TRIM_SECONDS="0.3",
    ).start()
    client = redis.Redis.from_url(own_redis.url, decode_responses=True)
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            gql = GraphQLClient(http, server.graphql_url)
            alice, bob = await register(gql), await register(gql)
            old = await send_many(gql, alice, bob, 150, "old")
            conversation = keys.conversation_messages(direct_conversation_id(alice.id, bob.id))
            deadline = time.monotonic() + 30
            while client.zcard(conversation) > 0 and time.monotonic() < deadline:
                await asyncio.sleep(0.2)  # archived, then trimmed out of Redis
            assert client.zcard(conversation) == 0
            # A retry of a clientId whose message already left Redis returns that message.
            retried = await send(gql, alice, bob, "retry of old 0", client_id="old-0")
            assert retried["id"] in old and retried["text"].startswith("old ")
            new = await send_many(gql, alice, bob, 100, "new")
            assert client.zcard(conversation) == 100  # the seam: 150 only in MongoDB, 100 in Redis
            for page in (50, 30, 7):
                got = [m["id"] for m in await all_history(gql, bob, alice, page=page)]
                assert got == old + new, f"page size {page}"
    finally:
        client.close()
        server.stop()
        own_redis.stop()


async def test_redis_losing_everything_while_running_loses_nothing(
    app_factory: Callable[..., AppServer], dev_servers: EmbeddedServers, tmp_path: Path
) -> None:
    """FLUSHALL under a running app: outbox and queues are re-created, the archive markers and
    the hot window restored from MongoDB, and new messages still reach MongoDB."""
    own_redis = start_redis(tmp_path / "redis")
    database = "durability_flush"
    server = app_factory(redis_url=own_redis.url, mongodb_url=mongodb_url(dev_servers, database),
                         HOT_WINDOW_TRIM_SECONDS="0.5").start()
    client = redis.Redis.from_url(own_redis.url, decode_responses=True)
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            gql = GraphQLClient(http, server.graphql_url)
            alice, bob = await register(gql), await register(gql)
            before = await send_many(gql, alice, bob, 60, "before")
            assert len(await wait_archived(mongodb_url(dev_servers, database), database, before)) == 60
            client.flushall()
            deadline = time.monotonic() + 20
            while not client.exists("cg:archive:markers-ready") and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            assert client.exists("cg:archive:markers-ready"), "restored from MongoDB while running"
            after = await send(gql, alice, bob, "after the wipe")
            assert [m["id"] for m in await all_history(gql, bob, alice, page=25)] == [*before, after["id"]]
            found = await wait_archived(mongodb_url(dev_servers, database), database, [after["id"]], timeout=30)
            assert found == [after["id"]]
    finally:
        client.close()
        server.stop()
        own_redis.stop()
