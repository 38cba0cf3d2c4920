"""Restore steps after Redis lost its data: `MessageStore.requeue_lost_transcriptions` queues every
PENDING voice message of MongoDB again, exactly once, and never one whose job Redis still holds;
`MessageStore.restore_client_ids` reserves the recent clientIds again."""

from __future__ import annotations

import dataclasses

from storage import keys
from storage.ids import new_id
from storage.messages import CLIENT_ID_TTL_SECONDS
from storage.records import next_revision
from storage.slots import partition_of
from tests.storage.conftest import MessageStores
from tests.storage.test_transcription_jobs import voice_message


async def _jobs(stores: MessageStores) -> list[str]:
    """The message id of every job on every partition's stream, sorted."""
    return sorted([fields["id"] for stream in keys.transcription_streams()
                   for _, fields in await stores.redis.xrange(stream)])


async def test_pending_voice_messages_are_queued_again_once(message_stores: MessageStores) -> None:
    stores = message_stores
    lost = await voice_message(stores)
    settled = await voice_message(stores)
    await stores.archive.upsert([lost, next_revision(settled, transcription_status="DONE")])
    assert await stores.messages.requeue_lost_transcriptions() == 0  # Redis still holds both jobs

    await stores.redis.flushdb()
    still_queued = await voice_message(stores)  # sent after the loss: its job is in Redis
    await stores.archive.upsert([still_queued])

    assert await stores.messages.requeue_lost_transcriptions() == 1
    assert await _jobs(stores) == sorted([lost.id, still_queued.id])  # `settled` is not PENDING
    assert await stores.messages.requeue_lost_transcriptions() == 0  # idempotent

    # A job waiting in its retry set counts as held too.
    stream = keys.transcription_stream(partition_of(lost.conversation_id))
    await stores.redis.xdel(stream, *[entry for entry, fields in await stores.redis.xrange(stream)
                                      if fields["id"] == lost.id])
    await stores.redis.zadd(keys.transcription_delayed(partition_of(lost.conversation_id)),
                            {f"{lost.id}:{lost.conversation_id}:2": 0})
    assert await stores.messages.requeue_lost_transcriptions() == 0


async def test_client_id_reservations_are_restored_for_the_rest_of_their_ttl(message_stores: MessageStores) -> None:
    stores = message_stores
    sent = dataclasses.replace(await voice_message(stores), client_id="retry-me")
    await stores.archive.upsert([sent])
    await stores.redis.flushdb()

    assert await stores.messages.restore_client_ids() == 1
    key = keys.client_id(sent.sender_id, "retry-me")
    assert await stores.redis.get(key) == sent.id
    assert 0 < await stores.redis.pttl(key) <= CLIENT_ID_TTL_SECONDS * 1000
    assert await stores.messages.restore_client_ids() == 0  # never over a reservation Redis holds
    assert await stores.messages.reserve_client_id(dataclasses.replace(sent, id=new_id())) == sent.id
