"""The operation latency histogram holds queries and mutations only: a subscription's lifetime
(seconds to days) is not a latency. Subscriptions are counted when they end, with their
lifetime in a histogram of their own. In-process (uvicorn in the test process, one registry)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from api.dev_servers import EmbeddedServers
from tests.conftest import TEST_JWT_SECRET
from tests.utils.graphql import GraphQLClient, register
from tests.utils.served import INSTANCE_LISTENERS, ServedApp, served_app
from tests.utils.ws import Socket, connect

WATCH = "subscription Watch { messageEvents { type message { id } } }"
HELD_SECONDS = 0.5


@pytest.fixture
async def served(dev_servers: EmbeddedServers, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServedApp]:
    async with served_app(mongodb_base_url=dev_servers.mongodb_url.rsplit("/", 1)[0],
                          work_dir=tmp_path_factory.mktemp("metrics-latency"), jwt_secret=TEST_JWT_SECRET) as app:
        yield app


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def watch_samples() -> dict[str, float]:
    return {
        "latency_count": sample("chattergram_graphql_operation_seconds_count", operation="Watch", type="subscription"),
        "lifetime_count": sample("chattergram_graphql_subscription_seconds_count", operation="Watch"),
        "lifetime_sum": sample("chattergram_graphql_subscription_seconds_sum", operation="Watch"),
        "ended_ok": sample("chattergram_graphql_operations_total", operation="Watch", type="subscription",
                           outcome="ok"),
        "ended_error": sample("chattergram_graphql_operations_total", operation="Watch", type="subscription",
                              outcome="error"),
    }


async def until_subscribed(served: ServedApp, count: int) -> None:
    """Until the hub holds `count` subscriptions beyond the instance's own listeners."""
    count += INSTANCE_LISTENERS
    for _ in range(200):
        if served.runtime.hub.local_subscriptions == count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{served.runtime.hub.local_subscriptions} subscriptions, expected {count}")


async def until_complete(socket: Socket, op_id: str) -> list[dict[str, Any]]:
    messages = []
    while True:
        message = await socket.next_message()
        assert message.get("id") == op_id, message
        if message["type"] == "complete":
            return messages
        messages.append(message)


async def test_a_subscription_ended_by_the_server_is_no_operation_latency(served: ServedApp) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        user = await register(GraphQLClient(http, served.graphql_url))
    before = watch_samples()
    admin = aioredis.Redis.from_url(served.redis_url)
    try:
        async with connect(served.ws_url, user.token) as socket:
            op = await socket.subscribe(WATCH)
            await until_subscribed(served, 1)
            opened = time.monotonic()
            await asyncio.sleep(HELD_SECONDS)
            # The hub's pub/sub connection drops: the subscription ends with an error (RESUBSCRIBE).
            assert await admin.client_kill_filter(_type="pubsub") >= 1
            [ended] = await until_complete(socket, op)
            held = time.monotonic() - opened
            assert ended["payload"]["errors"][0]["extensions"]["code"] == "RESUBSCRIBE"
    finally:
        await admin.aclose()
    after = watch_samples()
    assert after["latency_count"] == before["latency_count"], "a subscription's lifetime counted as latency"
    assert after["ended_error"] == before["ended_error"] + 1
    assert after["lifetime_count"] == before["lifetime_count"] + 1
    assert after["lifetime_sum"] - before["lifetime_sum"] >= HELD_SECONDS
    assert after["lifetime_sum"] - before["lifetime_sum"] <= held + 1  # its own lifetime, nothing else


async def test_a_subscription_the_client_completes_is_counted_with_its_lifetime(served: ServedApp) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        gql = GraphQLClient(http, served.graphql_url)
        user = await register(gql)
        before = watch_samples()
        queries_before = sample("chattergram_graphql_operation_seconds_count", operation="Me", type="query")
        async with connect(served.ws_url, user.token) as socket:
            op = await socket.subscribe(WATCH)
            await until_subscribed(served, 1)
            await asyncio.sleep(HELD_SECONDS)
            await socket.complete(op)
            await until_subscribed(served, 0)
            # A query over HTTP still has its latency measured.
            await gql.ok("query Me { me { id } }", token=user.token)
        for _ in range(100):  # the operation's own bookkeeping ends just after the hub's
            if watch_samples()["lifetime_count"] > before["lifetime_count"]:
                break
            await asyncio.sleep(0.05)
    after = watch_samples()
    assert after["latency_count"] == before["latency_count"]
    assert after["ended_ok"] == before["ended_ok"] + 1
    assert after["lifetime_count"] == before["lifetime_count"] + 1
    assert after["lifetime_sum"] - before["lifetime_sum"] >= HELD_SECONDS
    assert sample("chattergram_graphql_operation_seconds_count", operation="Me", type="query") == queries_before + 1


async def test_operations_that_never_ran_are_counted_as_unknown_errors(served: ServedApp) -> None:
    unknown = {"operation": "anonymous", "type": "unknown"}
    named = {"operation": "Absent", "type": "unknown"}
    before = (sample("chattergram_graphql_operation_seconds_count", **unknown),
              sample("chattergram_graphql_operation_seconds_count", **named))
    async with httpx.AsyncClient(timeout=30) as http:
        not_parsed = await http.post(served.graphql_url, json={"query": "{ me { id "})
        assert not_parsed.status_code == 200 and not_parsed.json()["errors"][0]["message"].startswith("Syntax Error")
        unknown_name = await http.post(served.graphql_url,
                                       json={"query": "query Present { me { id } }", "operationName": "Absent"})
        assert unknown_name.status_code == 400 and unknown_name.text == 'Unknown operation named "Absent".'
    assert sample("chattergram_graphql_operations_total", outcome="error", **unknown) >= 1
    assert sample("chattergram_graphql_operation_seconds_count", **unknown) == before[0] + 1
    assert sample("chattergram_graphql_operation_seconds_count", **named) == before[1] + 1
