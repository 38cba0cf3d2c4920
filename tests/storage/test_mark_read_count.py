"""markRead counts the partner's unread messages after the marker without loading a message
document (no JSON.GET per message), and the count is the same as counting them one by one."""

from __future__ import annotations

import time

from storage import keys
from storage.conversation_rebuild import ConversationRebuilder
from storage.conversations import ConversationStore
from storage.ids import id_timestamp_ms, new_id
from storage.outbox import Persister, ensure_group
from storage.records import StoredMessage
from tests.storage.conftest import MessageStores


def _message(sender: str, receiver: str, text: str) -> StoredMessage:
    message_id = new_id()
    return StoredMessage(id=message_id, kind="TEXT", sender_id=sender, receiver_id=receiver, text=text,
                         sent_at_ms=id_timestamp_ms(message_id))


async def _json_gets(stores: MessageStores) -> int:
    stats = await stores.redis.info("commandstats")
    return int(stats.get("cmdstat_json.get", {}).get("calls", 0))


async def test_mark_read_counts_the_partners_messages_after_the_marker_without_loading_them(
    message_stores: MessageStores,
) -> None:
    redis = message_stores.redis
    alice, bob = new_id(), new_id()
    sent: list[StoredMessage] = []
    for i in range(300):  # 300 from alice, with bob's replies in between
        sent.append(_message(alice, bob, f"a{i}"))
        await message_stores.messages.send(sent[-1])
        if i % 3 == 0:
            await message_stores.messages.send(_message(bob, alice, f"b{i}"))
    assert await redis.hget(keys.unread_counts(bob), alice) == "300"
    store = ConversationStore(redis, ConversationRebuilder(redis, message_stores.archive, message_stores.read_markers))
    await redis.set(keys.conversations_built(bob), "1")  # nothing in MongoDB to rebuild from

    await redis.config_resetstat()
    assert await store.mark_read(bob, alice, sent[149].id, 1_900_000_000_000)
    assert (await store.state(bob, alice)).unread == 150  # alice's messages after the 150th
    assert await _json_gets(message_stores) == 0  # counted without loading a document

    # Moving on recounts; a stale marker changes nothing.
    assert await store.mark_read(bob, alice, sent[289].id, 1_900_000_000_001)
    assert not await store.mark_read(bob, alice, sent[10].id, 1_900_000_000_002)
    assert (await store.state(bob, alice)).unread == 10
    # Alice reading bob's replies counts bob's messages only.
    await redis.set(keys.conversations_built(alice), "1")
    assert await store.mark_read(alice, bob, sent[0].id, 1_900_000_000_003)
    assert (await store.state(alice, bob)).unread == 100  # b0, b3, ... b297 all come after a0
    assert await _json_gets(message_stores) == 0


async def test_trim_and_hydrate_keep_each_senders_ids_with_the_conversations(message_stores: MessageStores) -> None:
    stores, redis = message_stores, message_stores.redis
    alice, bob = new_id(), new_id()
    two_days_ago_ms = int((time.time() - 2 * 86400) * 1000)  # outside the fixture's one-day window
    old = [StoredMessage(id=new_id(two_days_ago_ms + i), kind="TEXT", sender_id=alice, receiver_id=bob,
                         text=f"old {i}", sent_at_ms=two_days_ago_ms + i) for i in range(3)]
    recent = [_message(alice, bob, "recent a"), _message(bob, alice, "recent b"), _message(alice, bob, "recent c")]
    for message in old + recent:
        await stores.messages.send(message)
    persister = Persister(redis, stores.messages, stores.archive, stores.read_markers, block_ms=100)
    await ensure_group(redis)
    while await persister.drain_once():
        pass
    conversation = keys.conversation_id(alice, bob)

    async def sent_by(sender: str) -> list[str]:
        return list(await redis.zrange(keys.conversation_sent(conversation, sender), 0, -1))

    assert await stores.hot_window.trim(window_start_ms=stores.hot_window.window_start_ms()) == 3
    assert (await sent_by(alice), await sent_by(bob)) == ([recent[0].id, recent[2].id], [recent[1].id])

    # Redis lost the hot window: hydrating from MongoDB restores each sender's ids too.
    await redis.delete(keys.conversation_messages(conversation), keys.conversation_sent(conversation, alice),
                       keys.conversation_sent(conversation, bob), *[keys.message_key(m.id) for m in recent])
    assert await stores.hot_window.hydrate(window_start_ms=stores.hot_window.window_start_ms()) == 3
    assert (await sent_by(alice), await sent_by(bob)) == ([recent[0].id, recent[2].id], [recent[1].id])


async def test_a_dataset_from_before_the_sender_sets_is_backfilled_once(message_stores: MessageStores) -> None:
    stores, redis = message_stores, message_stores.redis
    alice, bob = new_id(), new_id()
    sent = [_message(alice, bob, "a0"), _message(bob, alice, "b0"), _message(alice, bob, "a1")]
    for message in sent:
        await stores.messages.send(message)
    conversation = keys.conversation_id(alice, bob)
    await redis.delete(keys.conversation_sent(conversation, alice), keys.conversation_sent(conversation, bob))

    await stores.hot_window.restore()  # start-up
    assert await redis.zrange(keys.conversation_sent(conversation, alice), 0, -1) == [sent[0].id, sent[2].id]
    assert await redis.zrange(keys.conversation_sent(conversation, bob), 0, -1) == [sent[1].id]
    assert await stores.hot_window.backfill_sender_sets() == 0  # once per dataset
