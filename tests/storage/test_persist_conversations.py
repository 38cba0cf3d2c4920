"""The persister writes DIRECT conversations made in Redis to MongoDB: a batch of them in one
Redis round-trip and one MongoDB write, whatever the batch size, and a copy MongoDB already has
is never changed."""

from __future__ import annotations

from bench.send_cost import counters_installed, counting
from storage import keys
from storage.conversations import new_direct, to_doc
from storage.ids import new_id
from storage.messages import SENT
from storage.outbox import ensure_group
from tests.storage.conftest import MessageStores, text_message


async def test_a_batch_of_new_conversations_is_one_redis_read_and_one_mongodb_write(
    message_stores: MessageStores,
) -> None:
    stores = message_stores
    made = [await stores.direct(new_id(), new_id()) for _ in range(20)]
    persister = stores.persister()
    with counters_installed(), counting() as tally:
        await stores.conversations.persist_created([c.id for c in made] + [made[0].id])  # an entry twice
    assert tally.round_trips == [["EVALSHA"] * 20]
    assert tally.mongo == ["update"]
    archived = {d["_id"]: d async for d in stores.conversations.collection.find({})}
    assert set(archived) == {c.id for c in made}
    assert [await stores.conversations.fetch_authoritative(c.id) for c in made] == made
    await ensure_group(stores.redis)
    assert await persister.drain_once() == 20  # the outbox entries: written again, harmlessly
    assert await stores.conversations.collection.count_documents({}) == 20


async def test_a_conversation_mongodb_has_is_left_as_it_is_and_one_redis_lost_is_skipped(
    message_stores: MessageStores,
) -> None:
    stores = message_stores
    older = new_direct(new_id(), new_id(), 1_000)
    await stores.conversations.collection.insert_one(to_doc(older))
    again = await stores.direct(*older.member_ids())  # made again in Redis, as new
    fresh = await stores.direct(new_id(), new_id())
    await stores.conversations.persist_created([again.id, "lost-in-redis", fresh.id])
    assert await stores.conversations.fetch_authoritative(older.id) == older
    assert await stores.conversations.mirrored(older.id) == older  # MongoDB's creation time adopted
    assert await stores.conversations.fetch_authoritative(fresh.id) == fresh
    assert await stores.conversations.collection.count_documents({}) == 2


async def test_a_pair_redis_lost_is_made_again_without_mongodb_and_the_persister_restores_its_state(
    message_stores: MessageStores,
) -> None:
    """Redis lost a DIRECT conversation MongoDB has (a wipe, a failover, an older snapshot): the
    pair's next send makes it again in Redis, asking MongoDB nothing, and the persister, finding
    MongoDB already had it, restores MongoDB's creation time and read markers into Redis."""
    stores = message_stores
    alice, bob = new_id(), new_id()
    persister = stores.persister()
    await ensure_group(stores.redis)
    original = await stores.direct(alice, bob)
    message = text_message(original.id, alice, bob)
    assert (await stores.send(message)).status == SENT
    assert await stores.member_state.mark_read(original.id, bob, message.id, direct=True,
                                               now_ms=original.created_ms + 5)
    while await persister.drain_once():
        pass
    conversation_keys = [keys.conversation_meta(original.id), keys.conversation_members(original.id),
                         keys.read_markers(original.id), keys.read_times(original.id)]
    await stores.redis.delete(*conversation_keys)  # Redis lost the conversation

    later = original.created_ms + 60_000
    with counters_installed(), counting() as tally:
        again = await stores.conversations.make_direct(alice, bob, later)
    assert tally.mongo == []
    assert again.created_ms == later  # made again, as new, until the persister knows better
    while await persister.drain_once():
        pass
    assert await stores.conversations.mirrored(original.id) == original
    assert await stores.redis.hget(keys.read_markers(original.id), bob) == message.id
    assert await stores.conversations.fetch_authoritative(original.id) == original  # MongoDB kept its copy
