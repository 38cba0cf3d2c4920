"""`/metrics` of `chattergram serve --workers 2`, whichever worker answers: the socket and
subscription gauges equal what is really open (every worker's share, counted once, right
after closes), and the backlog gauges read from Redis show work held back (MongoDB stopped, a
transcription engine that does not answer) and return to 0 once it is done, never doubled."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families
from starlette.requests import Request
from starlette.responses import JSONResponse

from api.app_server import AppServer
from api.dev_servers import ManagedServer, start_mongo, start_redis
from tests.utils.audio import speak, upload
from tests.utils.fake_deepgram import FakeDeepgram, Outcome, listen_response
from tests.utils.graphql import SEND, Account, GraphQLClient, register, send
from tests.utils.served import INSTANCE_LISTENERS
from tests.utils.ws import MESSAGE_EVENTS, Socket, connect, user_channel

MONGO_FAST_FAIL = "serverSelectionTimeoutMS=1500&connectTimeoutMS=1000"
WORKERS = 2
OWN_LISTENERS = WORKERS * INSTANCE_LISTENERS  # each worker holds its own
SCRAPES = 6  # each on a new connection: either worker may answer any of them
STATUS = "query M($id: ID!) { message(id: $id) { transcriptionStatus text } }"
SPOKEN = "Please call me back tomorrow morning."
ROUNDING = 0.002  # entry ids and Redis's clock are in whole ms


@dataclass
class HeldDeepgram(FakeDeepgram):
    """Deepgram's API that holds every request until `released` is set."""

    released: threading.Event = field(default_factory=threading.Event)

    async def _listen(self, request: Request) -> JSONResponse:
        while not self.released.is_set():
            await asyncio.sleep(0.05)
        return await super()._listen(request)


@dataclass
class Deployment:
    app: AppServer
    redis_url: str
    mongo: ManagedServer
    mongo_dir: Path
    metrics_dir: Path
    deepgram: HeldDeepgram


@pytest.fixture(scope="module")
def deployment(app_factory: Callable[..., AppServer], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    home = tmp_path_factory.mktemp("metrics-workers")
    redis_server, mongo = start_redis(home / "redis"), start_mongo(home / "mongo")
    metrics_dir = home / "prometheus"
    metrics_dir.mkdir()
    deepgram = HeldDeepgram()
    deepgram.answer(then=Outcome(200, listen_response([(SPOKEN, 0.9)])))
    with deepgram:
        app = app_factory(redis_url=redis_server.url, mongodb_url=f"{mongo.url}?{MONGO_FAST_FAIL}", workers=WORKERS,
                          PROMETHEUS_MULTIPROC_DIR=str(metrics_dir), STT_ENGINE="deepgram",
                          DEEPGRAM_URL=deepgram.url, DEEPGRAM_API_KEY="dg-test", DEEPGRAM_TIMEOUT_SECONDS="300")
        deployment = Deployment(app, redis_server.url, mongo, home / "mongo", metrics_dir, deepgram)
        try:
            app.start()
            yield deployment
        finally:
            deepgram.released.set()
            app.stop()
            deployment.mongo.stop()
            redis_server.stop()


async def scrape(app: AppServer) -> dict[str, float]:
    """One scrape on a new connection: every sample as `name{labels}` -> value (each once)."""
    async with httpx.AsyncClient(timeout=30) as fresh:
        response = await fresh.get(f"{app.url}/metrics")
    assert response.status_code == 200
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            key = s.name + ("{" + ",".join(f"{k}={v}" for k, v in sorted(s.labels.items())) + "}" if s.labels else "")
            assert key not in samples, f"{key} exposed twice"
            samples[key] = s.value
    return samples


BACKLOG_GAUGES = ("chattergram_outbox_backlog", "chattergram_transcription_queue_depth{state=queued}",
                  "chattergram_transcription_queue_depth{state=delayed}")


async def until_scraped(app: AppServer, expected: dict[str, float],
                        timeout: float = 60.0) -> None:
    """Until a scrape shows `expected` (closes and the persister run in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        samples = await scrape(app)
        seen = {name: samples.get(name) for name in expected}
        if seen == expected:
            return
        assert time.monotonic() < deadline, f"{seen} != {expected}"
        await asyncio.sleep(0.1)


async def every_scrape_shows(app: AppServer, expected: dict[str, float]) -> list[dict[str, float]]:
    scrapes = [await scrape(app) for _ in range(SCRAPES)]
    for samples in scrapes:
        assert {name: samples.get(name) for name in expected} == expected
    return scrapes


def connections_per_worker(metrics_dir: Path) -> dict[int, float]:
    """Each worker's own share of the connection gauge, as it wrote it."""
    shares = {}
    for path in metrics_dir.glob("gauge_livesum_*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        mmap = MmapedDict(str(path), read_mode=True)
        try:
            for key, value, _ in mmap.read_all_values():
                if json.loads(key)[0] == "chattergram_local_websocket_connections":
                    shares[pid] = value
        finally:
            mmap.close()
    return shares


async def until_subscribed(redis_url: str, users: list[Account], listening: int) -> None:
    """Until each user's event channel has `listening` subscribers in Redis: a worker subscribes
    it after counting the subscription, and unsubscribes it after counting the socket and the
    subscription closed, so the workers' counts are final when this returns."""
    client = aioredis.Redis.from_url(redis_url)
    try:
        for _ in range(400):
            counts = await client.pubsub_numsub(*[user_channel(user.id) for user in users])
            if all(n == listening for _, n in counts):
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"subscribers {counts}, expected {listening} each")
    finally:
        await client.aclose()


@dataclass
class Sockets:
    """Sockets of new users, each with one messageEvents subscription, closed with `stack`."""

    deployment: Deployment
    gql: GraphQLClient
    stack: contextlib.AsyncExitStack
    open: list[tuple[Account, Socket, str, contextlib.AsyncExitStack]] = field(default_factory=list)

    async def add(self) -> None:
        user = await register(self.gql)
        own = contextlib.AsyncExitStack()
        self.stack.push_async_callback(own.aclose)
        socket = await own.enter_async_context(connect(self.deployment.app.ws_url, user.token))
        self.open.append((user, socket, await socket.subscribe(MESSAGE_EVENTS), own))
        await until_subscribed(self.deployment.redis_url, [user], 1)

    async def add_until_every_worker_holds_some(self) -> None:
        """The kernel hands each connection to either worker."""
        while True:
            shares = connections_per_worker(self.deployment.metrics_dir)
            if len([n for n in shares.values() if n]) == WORKERS:
                return
            assert len(self.open) < 40, f"all sockets on one worker? {shares}"
            await self.add()


async def test_socket_gauges_count_every_workers_sockets_once(deployment: Deployment) -> None:
    app, redis_url = deployment.app, deployment.redis_url
    async with httpx.AsyncClient(timeout=30) as http, contextlib.AsyncExitStack() as stack:
        opened = Sockets(deployment, GraphQLClient(http, app.graphql_url), stack)
        await until_scraped(app, {"chattergram_local_websocket_connections": 0,
                                  # each worker's revocation and block listeners
                                  "chattergram_local_subscriptions": OWN_LISTENERS})
        for _ in range(6):
            await opened.add()
        sockets = opened.open
        await every_scrape_shows(app, {"chattergram_local_websocket_connections": len(sockets),
                                       "chattergram_local_subscriptions": len(sockets) + OWN_LISTENERS})
        await opened.add_until_every_worker_holds_some()
        assert sum(connections_per_worker(deployment.metrics_dir).values()) == len(sockets)
        await every_scrape_shows(app, {"chattergram_local_websocket_connections": len(sockets),
                                       "chattergram_local_subscriptions": len(sockets) + OWN_LISTENERS})

        # One subscription completed, then half the sockets closed: no worker's share stays behind.
        user, socket, op, _ = sockets[0]
        await socket.complete(op)
        await until_subscribed(redis_url, [user], 0)
        await every_scrape_shows(app, {"chattergram_local_websocket_connections": len(sockets),
                                       "chattergram_local_subscriptions": len(sockets) - 1 + OWN_LISTENERS})
        closing, sockets = sockets[:len(sockets) // 2], sockets[len(sockets) // 2:]
        for _, _, _, own in closing:
            await own.aclose()
        await until_subscribed(redis_url, [user for user, *_ in closing], 0)
        await every_scrape_shows(app, {"chattergram_local_websocket_connections": len(sockets),
                                       "chattergram_local_subscriptions": len(sockets) + OWN_LISTENERS})
        assert sum(connections_per_worker(deployment.metrics_dir).values()) == len(sockets)
        for _, _, _, own in sockets:
            await own.aclose()
        await until_subscribed(redis_url, [user for user, *_ in sockets], 0)
        await every_scrape_shows(app, {"chattergram_local_websocket_connections": 0,
                                       "chattergram_local_subscriptions": OWN_LISTENERS})


async def send_voice(gql: GraphQLClient, sender: Account, receiver: Account, folder: Path) -> dict[str, Any]:
    clip = speak(SPOKEN, folder, "webm")
    audio = await upload(gql.client, gql.url, sender.token, clip.read_bytes(), "v.webm", "audio/webm")
    audio_id = audio["data"]["uploadAudio"]["id"]
    return (await gql.ok(SEND, {"input": {"receiverId": receiver.id, "audioId": audio_id}},
                         token=sender.token))["sendMessage"]


async def test_backlog_gauges_show_held_work_once_and_return_to_zero(deployment: Deployment, tmp_path: Path) -> None:
    app, idle = deployment.app, {name: 0.0 for name in BACKLOG_GAUGES}
    async with httpx.AsyncClient(timeout=30) as http:
        gql = GraphQLClient(http, app.graphql_url)
        alice, bob = await register(gql), await register(gql)
        await send(gql, alice, bob, "hello")  # the conversation, made and persisted
        await until_scraped(app, idle)

        # A transcription the engine holds: one job, waiting since it was sent.
        before_send = time.time()
        voice = await send_voice(gql, alice, bob, tmp_path)
        sent = time.time()
        await asyncio.sleep(1)
        start = time.time()
        scrapes = await every_scrape_shows(app, {"chattergram_transcription_queue_depth{state=queued}": 1.0,
                                                       "chattergram_transcription_queue_depth{state=delayed}": 0.0})
        end = time.time()
        for samples in scrapes:
            assert start - sent - ROUNDING <= samples["chattergram_transcription_oldest_job_seconds"] \
                <= end - before_send + ROUNDING
        deployment.deepgram.released.set()
        await until_scraped(app, {**idle, "chattergram_transcription_oldest_job_seconds": 0.0,
                                        "chattergram_outbox_lag_seconds": 0.0})
        assert (await gql.ok(STATUS, {"id": voice["id"]}, token=bob.token))["message"] == {
            "transcriptionStatus": "DONE", "text": SPOKEN}

        # MongoDB stopped: every send waits in the outbox, pending on a persister or not yet read.
        deployment.mongo.stop()
        try:
            before_send = time.time()
            for n in range(5):
                await send(gql, alice, bob, f"during the outage {n}")
                if n == 0:
                    sent = time.time()
            await asyncio.sleep(1)
            start = time.time()
            scrapes = await every_scrape_shows(app, {"chattergram_outbox_backlog": 5.0})
            end = time.time()
            for samples in scrapes:
                assert start - sent - ROUNDING <= samples["chattergram_outbox_lag_seconds"] \
                    <= end - before_send + ROUNDING
        finally:
            deployment.mongo = start_mongo(deployment.mongo_dir, deployment.mongo.port)
        await until_scraped(app, {**idle, "chattergram_outbox_lag_seconds": 0.0,
                                        "chattergram_transcription_oldest_job_seconds": 0.0})


async def test_a_killed_workers_share_leaves_the_sums(deployment: Deployment) -> None:
    """Last in this module: uvicorn replaces the killed worker."""
    app = deployment.app
    async with httpx.AsyncClient(timeout=30) as http, contextlib.AsyncExitStack() as stack:
        opened = Sockets(deployment, GraphQLClient(http, app.graphql_url), stack)
        await opened.add()
        await opened.add_until_every_worker_holds_some()
        shares = {pid: n for pid, n in connections_per_worker(deployment.metrics_dir).items() if n}
        victim = min(shares, key=lambda pid: shares[pid])
        survivors = len(opened.open) - int(shares[victim])
        os.kill(victim, signal.SIGKILL)
        # Its sockets are gone and its gauges with it; its replacement listens for revocations and blocks.
        await until_scraped(app, {"chattergram_local_websocket_connections": survivors,
                                  "chattergram_local_subscriptions": survivors + OWN_LISTENERS})
        await every_scrape_shows(app, {"chattergram_local_websocket_connections": survivors,
                                       "chattergram_local_subscriptions": survivors + OWN_LISTENERS})
        assert victim not in connections_per_worker(deployment.metrics_dir)
