"""A clientId stays unique in the MongoDB archive past its Redis reservation: the unique
(sender, clientId) index is made idempotently at start-up (clearing older repeats' clientId),
and a second message under an archived clientId is withdrawn by the persister, the first one
staying, with the clientId reserved for it again."""

from __future__ import annotations

import dataclasses

import pytest

from storage import keys
from storage.archive import CLIENT_ID_INDEX, to_doc
from storage.ids import id_timestamp_ms, new_id
from storage.messages import SENT
from storage.outbox import ensure_group
from storage.records import MessageEventPayload, StoredMessage
from storage.slots import partition_of
from tests.storage.conftest import MessageStores


def _message(conversation_id: str, sender: str, receiver: str, client_id: str | None, text: str = "hi"
             ) -> StoredMessage:
    message_id = new_id()
    return StoredMessage(id=message_id, kind="TEXT", conversation_id=conversation_id, sender_id=sender,
                         receiver_id=receiver, text=text, sent_at_ms=id_timestamp_ms(message_id), client_id=client_id)


async def _client_id_index(stores: MessageStores) -> dict[str, object] | None:
    async for index in await stores.archive.collection.list_indexes():
        if index["name"] == CLIENT_ID_INDEX:
            return dict(index)
    return None


async def test_the_index_is_made_once_and_again_without_error(message_stores: MessageStores) -> None:
    await message_stores.archive.ensure_client_id_index()
    await message_stores.archive.ensure_client_id_index()  # every start-up runs it
    index = await _client_id_index(message_stores)
    assert index is not None and index["unique"] is True
    assert dict(index["partialFilterExpression"]) == {"client_id": {"$type": "string"}}


async def test_archived_repeats_keep_their_messages_and_the_first_keeps_the_client_id(
    message_stores: MessageStores,
) -> None:
    sender, receiver, conversation = new_id(), new_id(), new_id()
    first, second, third = (_message(conversation, sender, receiver, "twice") for _ in range(3))
    without = [_message(conversation, sender, receiver, None) for _ in range(2)]  # client_id null: not indexed
    other_sender = _message(conversation, receiver, sender, "twice")
    collection = message_stores.archive.collection
    await collection.insert_many([to_doc(m) for m in (third, first, second, *without, other_sender)])

    await message_stores.archive.ensure_client_id_index()

    assert await _client_id_index(message_stores) is not None
    docs = {d["_id"]: d.get("client_id") async for d in collection.find({})}
    assert len(docs) == 6, "no message is lost"
    assert (docs[first.id], docs[second.id], docs[third.id], docs[other_sender.id]) == ("twice", None, None, "twice")


@pytest.mark.parametrize("first_is_hot", [False, True])
async def test_a_second_message_under_an_archived_client_id_is_withdrawn(
    message_stores: MessageStores, first_is_hot: bool
) -> None:
    """The reservation expired (or Redis lost it): the retry sent a second message. The
    persister keeps the first (archived, out of the hot window or not), withdraws the repeat
    from Redis and reserves the clientId for the first message again."""
    stores, redis = message_stores, message_stores.redis
    await stores.archive.ensure_client_id_index()
    sender, receiver = new_id(), new_id()
    conversation = await stores.direct(sender, receiver)
    first = _message(conversation.id, sender, receiver, "once", "the text")
    assert (await stores.send(first)).status == SENT
    await ensure_group(redis)
    persister = stores.persister()
    await persister.drain_once()
    if not first_is_hot:  # it left the hot window
        checked, _ = await stores.hot_window.archived_prefix([f"{first.id}:{conversation.id}"])
        assert await stores.hot_window.remove_checked(checked) == 1
    await redis.delete(keys.client_id(sender, "once"))  # the reservation expired

    repeat = _message(conversation.id, sender, receiver, "once", "the text")
    assert await stores.messages.reserve_client_id(repeat) is repeat  # a fresh reservation
    assert (await stores.send(repeat)).status == SENT
    async with redis.pubsub() as events:  # what the receiver's open subscriptions are told
        await events.subscribe(keys.user_events(receiver))
        await events.get_message(timeout=1)  # the subscription's confirmation
        await persister.drain_once()
        await persister.drain_once()  # a replay (a crash before the acknowledgement) changes nothing
        told = [MessageEventPayload.decode(m["data"]) for _ in range(2)
                if (m := await events.get_message(ignore_subscribe_messages=True, timeout=1))]
    # The repeat's CREATED reached the members: they are told it is gone, once, with its tombstone.
    assert [(e.type, e.message.id, e.message.text, e.message.deleted_at_ms is not None) for e in told] == [
        ("DELETED", repeat.id, "", True)]

    archived = [d["_id"] async for d in stores.archive.collection.find({"sender_id": sender, "client_id": "once"})]
    assert archived == [first.id]
    assert await stores.archive.get(repeat.id) is None
    assert await stores.messages.find(repeat.id, conversation_id=conversation.id) is None
    hot = await redis.zrange(keys.conversation_messages(conversation.id), 0, -1)
    assert hot == ([first.id] if first_is_hot else [])
    assert await redis.zrange(keys.conversation_sent(conversation.id, sender), 0, -1) == hot
    assert not any(e.startswith(repeat.id) for e in await redis.zrange(keys.hot_messages(
        partition_of(conversation.id)), 0, -1))
    assert await redis.xlen(keys.outbox_stream(partition_of(conversation.id))) == 0
    # Every later retry gets the first message.
    assert await stores.messages.reserve_client_id(_message(conversation.id, sender, receiver, "once")) == first.id
    assert await stores.messages.find(first.id) == first


async def test_an_update_of_a_repeat_archived_before_the_index_is_archived_not_withdrawn(
    message_stores: MessageStores,
) -> None:
    """A repeat archived before the index (its clientId cleared there at start-up) that is
    still hot and changes (a transcript, an edit): a message of its own, archived with its new
    revision and still no clientId, and it stays in Redis."""
    stores, redis = message_stores, message_stores.redis
    sender, receiver = new_id(), new_id()
    conversation = await stores.direct(sender, receiver)
    first, repeat = (_message(conversation.id, sender, receiver, "twice") for _ in range(2))
    await stores.archive.collection.insert_many([to_doc(first), to_doc(repeat)])
    await stores.archive.ensure_client_id_index()
    assert (await stores.send(repeat)).status == SENT  # hot, as hydrated
    await stores.messages.update(dataclasses.replace(repeat, text="edited", rev=1))

    await ensure_group(redis)
    await stores.persister().drain_once()

    archived = {d["_id"]: d async for d in stores.archive.collection.find({"sender_id": sender})}
    assert (archived[first.id].get("client_id"), archived[first.id]["rev"]) == ("twice", 0)
    assert (archived[repeat.id].get("client_id"), archived[repeat.id]["rev"], archived[repeat.id]["text"]) == (
        None, 1, "edited")
    assert await redis.zrange(keys.conversation_messages(conversation.id), 0, -1) == [repeat.id]
