"""Commands sent together by hand (storage.scripts.in_one_round_trip: one write, the replies read
in order on one pooled connection) leave that connection clean whatever happens: an error reply
among them, a connection that breaks, a caller cancelled while waiting. Scripts run that way
(EVALSHA, no SCRIPT EXISTS first) still run after Redis forgot its scripts (a restart, SCRIPT
FLUSH): the calls refused with NOSCRIPT run again, loaded."""

from __future__ import annotations

import asyncio
import contextlib
import time

from redis.exceptions import ResponseError

from storage.ids import new_id
from storage.scripts import in_one_round_trip
from tests.storage.conftest import MessageStores


async def test_conversations_are_read_after_redis_flushed_its_scripts(message_stores: MessageStores) -> None:
    conversations = message_stores.conversations
    alice, bob, carol = new_id(), new_id(), new_id()
    now = int(time.time() * 1000)
    made = [await conversations.make_direct(alice, bob, now), await conversations.make_direct(alice, carol, now)]
    await message_stores.redis.script_flush()
    found = await conversations.get_many([c.id for c in made])
    assert [found[c.id] for c in made] == made
    await message_stores.redis.script_flush()
    assert await conversations.get(made[0].id) == made[0]


async def test_an_error_reply_is_returned_in_its_place_and_the_rest_still_read(message_stores: MessageStores) -> None:
    redis = message_stores.redis
    replies = await in_one_round_trip(redis, [("SET", "k", "text"), ("INCR", "k"), ("GET", "k")])
    assert replies[0] is True or replies[0] == "OK"
    assert isinstance(replies[1], ResponseError)
    assert replies[2] == "text"
    assert await redis.get("k") == "text"  # the pooled connection answers its next user rightly


async def test_a_broken_connection_is_retried(message_stores: MessageStores) -> None:
    redis = message_stores.redis
    await redis.set("k", "1")
    await redis.client_kill_filter(_type="normal", skipme=False)  # every pooled connection breaks
    assert await in_one_round_trip(redis, [("INCR", "k"), ("GET", "k")]) == [2, "2"]


async def test_a_caller_cancelled_while_waiting_leaves_no_reply_behind(message_stores: MessageStores) -> None:
    redis = message_stores.redis
    await redis.set("k", "mine")
    waiting = asyncio.create_task(in_one_round_trip(redis, [("BLPOP", "empty", 1), ("GET", "k")]))
    await asyncio.sleep(0.2)
    waiting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiting
    await asyncio.sleep(1.2)  # BLPOP's reply would now be waiting on the connection
    for _ in range(3):  # whichever pooled connection is taken
        assert await in_one_round_trip(redis, [("GET", "k")]) == ["mine"]
        assert await redis.get("k") == "mine"
