"""Chaos, bounded and on loopback only: about 25 s of sends and subscriptions across two app
instances while Redis restarts (AOF), MongoDB stalls for 10 s (SIGSTOP/SIGCONT of its server's
process group), one instance is killed with SIGKILL during the stall (its persister's batch in
flight) and the pub/sub connections are killed (`CLIENT KILL TYPE pubsub`). The clients behave
as real ones do (tests/utils/chaos.py): a send is retried with the same clientId until
acknowledged, a subscription is made again after RESUBSCRIBE, or on the next instance when its
WebSocket dies.

Afterwards every acknowledged message is in MongoDB exactly once, with its conversation, and
nothing else is; every subscriber received every event of its open subscription (and no one
else's), each earlier one having ended with the resync signal; and nobody is left online."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from pymongo import AsyncMongoClient

from api.app_server import AppServer
from api.dev_servers import ManagedServer, start_mongo, start_redis
from tests.utils.chaos import Sent, Subscriber, send_until_acked
from tests.utils.graphql import Account, GraphQLClient, register

pytestmark = pytest.mark.slow  # started first by `make test` (tests/conftest.py)

INSTANCES = 2  # one is killed: its persister's entries and its clients go to the other
USERS = 6
SENDERS = 3
MAX_SENDS_EACH = 1000  # bounds the loop; the faults' schedule ends it first
STALL_SECONDS = 10
SETTINGS = {"STT_ENGINE": "none", "OUTBOX_CLAIM_IDLE_SECONDS": "1",  # the survivor takes the killed one's entries
            "PRESENCE_TTL_SECONDS": "3", "PRESENCE_HEARTBEAT_SECONDS": "0.5"}
MONGO_FAST_FAIL = "serverSelectionTimeoutMS=1500&connectTimeoutMS=1000"
ONLINE_ONLY = "query { users(onlineOnly: true, first: 200) { edges { node { id } } } }"
DATABASE = "chaos"


def _say(what: str, since: float) -> None:
    print(f"chaos +{time.monotonic() - since:5.1f} s: {what}", file=sys.stderr, flush=True)


async def test_acknowledged_messages_and_events_survive_kills_restarts_and_stalls(
    app_factory: Callable[..., AppServer], tmp_path: Path
) -> None:
    began = time.monotonic()
    servers = {"redis": start_redis(tmp_path / "redis"), "mongo": start_mongo(tmp_path / "mongo")}
    mongodb_url = f"{servers['mongo'].url.rsplit('/', 1)[0]}/{DATABASE}?{MONGO_FAST_FAIL}"
    apps = [app_factory(redis_url=servers["redis"].url, mongodb_url=mongodb_url, **SETTINGS) for _ in range(INSTANCES)]
    subscribers: list[Subscriber] = []
    try:
        _say("Redis and MongoDB up", began)
        await asyncio.gather(*(asyncio.to_thread(app.start) for app in apps))
        _say("instances up", began)
        async with httpx.AsyncClient(timeout=30) as http:
            gql = GraphQLClient(http, apps[1].graphql_url)
            users = [await register(gql) for _ in range(USERS)]
            subscribers += [Subscriber(user, [app.ws_url for app in apps], first=n) for n, user in enumerate(users)]
            for subscriber in subscribers:
                subscriber.start()
            await _until_online(gql, users, online=True)
            _say("servers up, everyone subscribed", began)

            sent: list[Sent] = []
            stop = asyncio.Event()
            senders = [asyncio.create_task(_send_loop(http, apps, users, n, sent, stop)) for n in range(SENDERS)]
            try:
                await _faults(apps, servers, tmp_path, began)
            finally:
                stop.set()
                await asyncio.gather(*senders)
            _say(f"{len(sent)} messages acknowledged", began)

            await _closing_round(http, apps, users, subscribers, sent)
            await _until_online(gql, users, online=True)  # connected elsewhere: online despite the dead instance
            await _until_every_event_arrived(subscribers, sent)
            for subscriber in subscribers:
                await subscriber.stop()
            _check_subscriptions(subscribers, sent)
            await _check_archive(mongodb_url, sent, users)
            await _until_online(gql, users, online=False)
            _say("checked", began)
    finally:
        for subscriber in subscribers:
            with contextlib.suppress(Exception):
                await subscriber.stop()
        for app in apps:
            app.stop()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(servers["mongo"].process.pid, signal.SIGCONT)
        servers["mongo"].stop()
        servers["redis"].stop()


async def _faults(apps: list[AppServer], servers: dict[str, ManagedServer], tmp_path: Path, began: float) -> None:
    """One after the other, with traffic flowing throughout."""
    await asyncio.sleep(2)
    old = servers["redis"]
    await asyncio.to_thread(old.stop)  # SIGTERM: the AOF is flushed
    servers["redis"] = await asyncio.to_thread(start_redis, tmp_path / "redis", old.port)
    _say("Redis restarted", began)
    await asyncio.sleep(3)
    mongo_group = servers["mongo"].process.pid  # its own session: the group id is its pid
    os.killpg(mongo_group, signal.SIGSTOP)
    _say("MongoDB stalled (SIGSTOP)", began)
    try:
        await asyncio.sleep(3)
        # Its persister's batch is in flight to the stalled MongoDB: the other takes it over.
        await asyncio.to_thread(apps[0].kill)
        _say("instance 0 killed (SIGKILL)", began)
        await asyncio.sleep(STALL_SECONDS - 3)
    finally:
        os.killpg(mongo_group, signal.SIGCONT)
    _say("MongoDB resumed (SIGCONT)", began)
    await asyncio.sleep(2)
    admin = aioredis.Redis.from_url(servers["redis"].url)
    try:
        killed = await admin.client_kill_filter(_type="pubsub")
    finally:
        await admin.aclose()
    _say(f"{killed} pub/sub connections killed", began)
    await asyncio.sleep(3)


async def _send_loop(http: httpx.AsyncClient, apps: list[AppServer], users: list[Account], n: int,
                     sent: list[Sent], stop: asyncio.Event) -> None:
    """Messages between random pairs, each retried until acknowledged, starting on instance n and
    going on to the next (as a client behind a load balancer would)."""
    pairs = random.Random(n)
    urls = [apps[(n + i) % len(apps)].graphql_url for i in range(len(apps))]
    for count in range(MAX_SENDS_EACH):
        if stop.is_set():
            return
        sender, receiver = pairs.sample(users, 2)
        sent.append(await send_until_acked(http, urls, sender, receiver, f"chaos {n} {count}", f"chaos-{n}-{count}"))
        await asyncio.sleep(0.1)


async def _closing_round(http: httpx.AsyncClient, apps: list[AppServer], users: list[Account],
                         subscribers: list[Subscriber], sent: list[Sent], timeout: float = 20.0) -> None:
    """Message each subscriber until its open subscription got an event: events flow again."""
    urls = [app.graphql_url for app in apps]
    deadline = time.monotonic() + timeout
    for n, subscriber in enumerate(subscribers):
        attempt = 0
        while not ((epoch := subscriber.epochs[-1]).ended_by is None and epoch.first_event_at is not None):
            assert time.monotonic() < deadline, f"{subscriber.user.username}: no events again, {subscriber.epochs}"
            sent.append(await send_until_acked(http, urls, users[(n + 1) % len(users)], subscriber.user, "closing",
                                               f"closing-{n}-{attempt}"))
            attempt += 1
            await asyncio.sleep(0.3)


def _due(subscriber: Subscriber, sent: list[Sent]) -> set[str]:
    """The messages its open subscription must have had: those of its conversations whose first
    attempt began after that subscription surely listened (it had an event by then)."""
    listening_since = subscriber.epochs[-1].first_event_at
    assert listening_since is not None
    me = subscriber.user.id
    return {s.id for s in sent if me in (s.sender_id, s.receiver_id) and s.started > listening_since}


async def _until_every_event_arrived(subscribers: list[Subscriber], sent: list[Sent], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while any(_due(s, sent) - set(s.epochs[-1].events) for s in subscribers) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)


def _check_subscriptions(subscribers: list[Subscriber], sent: list[Sent]) -> None:
    ends: dict[str | None, int] = {}
    for subscriber in subscribers:
        *earlier, last = subscriber.epochs
        for epoch in subscriber.epochs:
            ends[epoch.ended_by] = ends.get(epoch.ended_by, 0) + 1
            assert len(epoch.events) == len(set(epoch.events)), f"an event twice: {epoch}"
        assert all(e.ended_by in ("RESUBSCRIBE", "CLOSED") for e in earlier), subscriber.epochs
        assert last.ended_by is None, last
        missing = _due(subscriber, sent) - set(last.events)
        assert not missing, f"{subscriber.user.username} missed {len(missing)} events without a resync signal"
        mine = {s.id for s in sent if subscriber.user.id in (s.sender_id, s.receiver_id)}
        assert subscriber.received() <= mine, "an event of a message it is no member of, or never acknowledged"
    # The faults reached the clients: instance 0's sockets died, the pub/sub drops ended subscriptions.
    assert ends.get("CLOSED", 0) >= 1 and ends.get("RESUBSCRIBE", 0) >= USERS, ends


async def _check_archive(mongodb_url: str, sent: list[Sent], users: list[Account], timeout: float = 30.0) -> None:
    acknowledged = {s.id: s for s in sent}
    assert len(acknowledged) == len(sent), "two sends acknowledged with one id"
    mongo: AsyncMongoClient[Any] = AsyncMongoClient(mongodb_url)
    try:
        messages = mongo[DATABASE]["messages"]
        query = {"sender_id": {"$in": [u.id for u in users]}}
        deadline = time.monotonic() + timeout
        while (archived := await messages.count_documents({"_id": {"$in": list(acknowledged)}})) < len(sent):
            assert time.monotonic() < deadline, f"{archived} of {len(sent)} acknowledged messages archived"
            await asyncio.sleep(0.25)
        docs = [d async for d in messages.find(query, {"_id": 1, "conversation_id": 1, "client_id": 1})]
    finally:
        await mongo.close()
    assert len(docs) == len(sent), f"{len(docs)} archived for {len(sent)} acknowledged: a retry made a second one"
    for doc in docs:
        first = acknowledged[doc["_id"]]
        assert (doc["conversation_id"], doc["client_id"]) == (first.conversation_id, first.client_id), doc


async def _until_online(gql: GraphQLClient, users: list[Account], *, online: bool, timeout: float = 20.0) -> None:
    """Until every user is online (or none is), as `users(onlineOnly: true)` tells."""
    ours = {u.id for u in users}
    deadline = time.monotonic() + timeout
    while True:
        edges = (await gql.ok(ONLINE_ONLY, token=users[0].token))["users"]["edges"]
        listed = ours & {e["node"]["id"] for e in edges}
        if listed == (ours if online else set()):
            return
        assert time.monotonic() < deadline, f"online: {len(listed)} of {len(ours)}, expected {'all' if online else 0}"
        await asyncio.sleep(0.2)
