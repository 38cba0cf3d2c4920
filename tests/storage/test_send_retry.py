"""A send whose script ran but whose reply was lost is run again by redis-py's Retry: the
second run must change nothing (one unread, one outbox entry, one CREATED event)."""

from __future__ import annotations

import asyncio

import pytest

from storage import keys
from storage.ids import id_timestamp_ms, new_id
from storage.records import MessageEventPayload, StoredMessage
from tests.storage.conftest import MessageStores


@pytest.mark.parametrize("client_id", [None, "retried-client-id"])
async def test_a_retried_send_script_counts_stores_and_publishes_once(
    message_stores: MessageStores, client_id: str | None
) -> None:
    redis = message_stores.redis
    message_id = new_id()
    message = StoredMessage(id=message_id, kind="TEXT", sender_id=new_id(), receiver_id=new_id(), text="hello",
                            sent_at_ms=id_timestamp_ms(message_id), client_id=client_id)
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    try:
        await pubsub.subscribe(keys.user_events(message.receiver_id))
        assert await message_stores.messages.send(message) == (message, True)
        # The same script again, as redis-py's Retry runs it after a connection error.
        assert await message_stores.messages.send(message) == (message, True)

        events: list[str] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 1.0
        while (remaining := deadline - loop.time()) > 0:
            reply = await pubsub.get_message(timeout=remaining)
            if reply is not None:
                events.append(MessageEventPayload.decode(reply["data"]).type)
    finally:
        await pubsub.aclose()

    unread = await redis.hget(keys.unread_counts(message.receiver_id), message.sender_id)
    outbox = [fields for _, fields in await redis.xrange(keys.OUTBOX_STREAM) if fields.get("id") == message.id]
    assert (unread, len(outbox), events) == ("1", 1, ["CREATED"])
