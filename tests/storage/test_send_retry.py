"""A send whose script ran but whose reply was lost is run again by redis-py's Retry: the
second run must change nothing (one unread, one outbox entry, one CREATED event)."""

from __future__ import annotations

import asyncio

import pytest

from storage import keys
from storage.ids import id_timestamp_ms, new_id
from storage.messages import ALREADY_SENT, SENT, SendOutcome
from storage.records import MessageEventPayload, StoredMessage
from storage.slots import partition_of
from tests.storage.conftest import MessageStores


@pytest.mark.parametrize("client_id", [None, "retried-client-id"])
async def test_a_retried_send_script_counts_stores_and_publishes_once(
    message_stores: MessageStores, client_id: str | None
) -> None:
    redis = message_stores.redis
    sender, receiver = new_id(), new_id()
    conversation = await message_stores.direct(sender, receiver)
    message_id = new_id()
    message = StoredMessage(id=message_id, kind="TEXT", conversation_id=conversation.id, sender_id=sender,
                            receiver_id=receiver, text="hello", sent_at_ms=id_timestamp_ms(message_id),
                            client_id=client_id)
    members = tuple(sorted((sender, receiver)))
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    try:
        await pubsub.subscribe(keys.user_events(receiver))
        first = await message_stores.send(message)
        assert (first.status, first.message, tuple(sorted(first.member_ids))) == (SENT, message, members)
        # The same script again, as redis-py's Retry runs it after a connection error.
        again = await message_stores.send(message)
        assert (again.status, again.message, tuple(sorted(again.member_ids))) == (ALREADY_SENT, message, members)
        assert isinstance(again, SendOutcome)

        events: list[str] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 1.0
        while (remaining := deadline - loop.time()) > 0:
            reply = await pubsub.get_message(timeout=remaining)
            if reply is not None:
                events.append(MessageEventPayload.decode(reply["data"]).type)
    finally:
        await pubsub.aclose()

    [state] = await message_stores.member_state.states(receiver, [conversation.id])
    outbox_stream = keys.outbox_stream(partition_of(conversation.id))
    outbox = [fields for _, fields in await redis.xrange(outbox_stream) if fields.get("id") == message.id]
    hot = await redis.zrange(keys.conversation_messages(conversation.id), 0, -1)
    assert (state.unread, len(outbox), events, hot) == (1, 1, ["CREATED"], [message.id])
