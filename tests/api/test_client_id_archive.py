"""A clientId retried after its Redis reservation is gone (expired: a tiny TTL here; or lost:
FLUSHALL before the upkeep restored it) and after the first message left the hot window: MongoDB
never holds a second message, a retry acknowledged with a new id meanwhile is withdrawn, and
every retry from then on returns the first message. In-process apps: the TTL is a module
constant, patched."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from pymongo import AsyncMongoClient

from storage import keys
from storage import messages as messages_module
from storage.ids import direct_conversation_id
from tests.utils.graphql import Account, GraphQLClient, all_history, register, send
from tests.utils.in_process import InProcessApps

TTL_SECONDS = 2


async def _until(what: str, check: Callable[[], Awaitable[bool]], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.1)


async def _archived(mongo: AsyncMongoClient[Any], database: str, query: dict[str, Any]) -> list[str]:
    return sorted([d["_id"] async for d in mongo[database]["messages"].find(query, {"_id": 1})])


@pytest.mark.parametrize("reservation", ["expired", "lost"])
async def test_a_retry_past_the_reservation_never_leaves_a_second_message(
    in_process_apps: InProcessApps, monkeypatch: pytest.MonkeyPatch, reservation: str
) -> None:
    monkeypatch.setattr(messages_module, "CLIENT_ID_TTL_SECONDS", TTL_SECONDS)
    # "expired": a 3 s hot window trimmed often; "lost": no upkeep before the retry (it would
    # restore the reservation from MongoDB first, which tests/api/test_redis_loss_recovery.py covers).
    settings = ({"hot_window_days": 3 / 86400, "hot_window_trim_seconds": 0.2} if reservation == "expired"
                else {"hot_window_trim_seconds": 3600})
    app = await in_process_apps.start(**settings)
    redis = aioredis.Redis.from_url(app.redis_url, decode_responses=True)
    mongo: AsyncMongoClient[Any] = AsyncMongoClient(app.mongodb_url)
    try:
        async with app.client() as gql:
            alice, bob = await register(gql), await register(gql)
            first = await send(gql, alice, bob, "only once", client_id="retried")
            by_client_id = {"sender_id": alice.id, "client_id": "retried"}

            async def first_archived() -> bool:
                return await _archived(mongo, app.database, by_client_id) == [first["id"]]
            await _until("archived", first_archived)
            reserved = keys.client_id(alice.id, "retried")
            if reservation == "expired":
                conversation = keys.conversation_messages(direct_conversation_id(alice.id, bob.id))

                async def gone() -> bool:
                    return not await redis.exists(reserved) and await redis.zcard(conversation) == 0
                await _until("the reservation expired and the message left the hot window", gone)
            else:
                await redis.flushall()

            # Acknowledged once under a new id: the reservation is gone and the send path does not
            # ask MongoDB (it must work while MongoDB is down); the persister settles it.
            retried = await send(gql, alice, bob, "only once", client_id="retried")
            assert retried["id"] != first["id"] and retried["text"] == "only once"

            async def settled() -> bool:  # the persister withdrew a repeat, if the retry made one
                return await redis.get(reserved) == first["id"]
            await _until("the clientId names the first message again", settled)
            await _assert_only_the_first(gql, alice, bob, first["id"])
            history = [m["id"] for m in await all_history(gql, bob, alice)]
            # Redis lost the hot window too, and the upkeep that restores it has not run yet.
            assert history == ([first["id"]] if reservation == "expired" else [])
            assert await _archived(mongo, app.database, {"sender_id": alice.id}) == [first["id"]]
    finally:
        await redis.aclose()
        await mongo.close()


async def _assert_only_the_first(gql: GraphQLClient, alice: Account, bob: Account, first_id: str) -> None:
    for _ in range(2):  # every later retry returns the first message
        assert (await send(gql, alice, bob, "only once", client_id="retried"))["id"] == first_id
