"""Unread counts come from the conversation's id sets, never from the message documents: the
count of a member is the other members' messages after the member's read marker (two
ZLEXCOUNTs, no JSON.GET per message), the same as counting them one by one; a stale marker
changes nothing, and your own messages (notes to self included) are never unread."""

from __future__ import annotations

import time

from storage import keys
from storage.ids import id_timestamp_ms, new_id
from storage.member_state import NOT_A_MEMBER
from storage.messages import SENT
from storage.outbox import ensure_group
from storage.records import StoredMessage
from tests.storage.conftest import MessageStores


def _message(conversation_id: str, sender: str, receiver: str, text: str) -> StoredMessage:
    message_id = new_id()
    return StoredMessage(id=message_id, kind="TEXT", conversation_id=conversation_id, sender_id=sender,
                         receiver_id=receiver, text=text, sent_at_ms=id_timestamp_ms(message_id))


async def _send(stores: MessageStores, message: StoredMessage) -> StoredMessage:
    assert (await stores.send(message)).status == SENT
    return message


async def _json_gets(stores: MessageStores) -> int:
    stats = await stores.redis.info("commandstats")
    return int(stats.get("cmdstat_json.get", {}).get("calls", 0))


async def test_unread_counts_the_partners_messages_after_the_marker_without_loading_them(
    message_stores: MessageStores,
) -> None:
    stores = message_stores
    alice, bob = new_id(), new_id()
    conversation = (await stores.direct(alice, bob)).id
    sent: list[StoredMessage] = []
    replies: list[StoredMessage] = []
    for i in range(300):  # 300 from alice, with bob's replies in between
        sent.append(await _send(stores, _message(conversation, alice, bob, f"a{i}")))
        if i % 3 == 0:
            replies.append(await _send(stores, _message(conversation, bob, alice, f"b{i}")))
    state = stores.member_state

    async def unread(user: str) -> int:
        [found] = await state.states(user, [conversation])
        return found.unread

    await stores.redis.config_resetstat()
    assert await unread(bob) == 300  # no marker yet: every message of alice's, none of his own
    assert await unread(alice) == 100

    def counted_one_by_one(reader: str, up_to: str) -> int:
        return sum(1 for m in sent + replies if m.sender_id != reader and m.id > up_to)

    assert await state.mark_read(conversation, bob, sent[149].id, direct=True, now_ms=1_900_000_000_000) == 1
    [bobs] = await state.states(bob, [conversation])
    assert (bobs.unread, bobs.read_up_to, bobs.read_times_ms) == (
        150, sent[149].id, {bob: 1_900_000_000_000})  # alice's messages after the 150th
    assert bobs.unread == counted_one_by_one(bob, sent[149].id)
    assert await _json_gets(stores) == 0  # counted without loading a document

    # Moving on recounts; a stale marker changes nothing (neither the marker nor its time).
    assert await state.mark_read(conversation, bob, sent[289].id, direct=True, now_ms=1_900_000_000_001) == 1
    assert await state.mark_read(conversation, bob, sent[10].id, direct=True, now_ms=1_900_000_000_002) == 0
    assert await state.mark_read(conversation, bob, sent[289].id, direct=True, now_ms=1_900_000_000_003) == 0
    [bobs] = await state.states(bob, [conversation])
    assert (bobs.unread, bobs.read_up_to, bobs.read_times_ms) == (10, sent[289].id, {bob: 1_900_000_000_001})
    assert bobs.unread == counted_one_by_one(bob, sent[289].id)
    # Alice reading bob's replies counts bob's messages only.
    assert await state.mark_read(conversation, alice, sent[0].id, direct=True, now_ms=1_900_000_000_004) == 1
    assert await unread(alice) == 100 == counted_one_by_one(alice, sent[0].id)  # b0, b3, ... b297 all after a0
    assert await unread(bob) == 10  # alice's marker moved, not bob's
    # Someone outside the conversation can move no marker, and gets nothing counted.
    carol = new_id()
    assert await state.mark_read(conversation, carol, sent[-1].id, direct=True, now_ms=1_900_000_000_005) == (
        NOT_A_MEMBER)
    assert await stores.redis.hget(keys.read_markers(conversation), carol) is None
    assert await _json_gets(stores) == 0


async def test_notes_to_self_are_never_unread(message_stores: MessageStores) -> None:
    stores = message_stores
    alice = new_id()
    notes = await stores.direct(alice, alice)
    assert (notes.kind, notes.member_ids()) == ("DIRECT", [alice])
    written = [await _send(stores, _message(notes.id, alice, alice, f"note {i}")) for i in range(3)]

    [state] = await stores.member_state.states(alice, [notes.id])
    assert (state.unread, state.read_up_to) == (0, None)
    assert await stores.member_state.mark_read(notes.id, alice, written[0].id, direct=True, now_ms=1) == 1
    [state] = await stores.member_state.states(alice, [notes.id])
    assert (state.unread, state.read_up_to) == (0, written[0].id)


async def test_trim_and_hydrate_keep_each_senders_ids_with_the_conversations(message_stores: MessageStores) -> None:
    stores, redis = message_stores, message_stores.redis
    alice, bob = new_id(), new_id()
    conversation = (await stores.direct(alice, bob)).id
    two_days_ago_ms = int((time.time() - 2 * 86400) * 1000)  # outside the fixture's one-day window
    old = [StoredMessage(id=new_id(two_days_ago_ms + i), kind="TEXT", conversation_id=conversation, sender_id=alice,
                         receiver_id=bob, text=f"old {i}", sent_at_ms=two_days_ago_ms + i) for i in range(3)]
    recent = [_message(conversation, alice, bob, "recent a"), _message(conversation, bob, alice, "recent b"),
              _message(conversation, alice, bob, "recent c")]
    for message in old + recent:
        await _send(stores, message)
    # Bob has read the old ones: his count never depends on what the hot window still holds.
    assert await stores.member_state.mark_read(conversation, bob, old[-1].id, direct=True, now_ms=1) == 1
    persister = stores.persister()
    await ensure_group(redis)
    while await persister.drain_once():
        pass

    async def sent_by(sender: str) -> list[str]:
        return list(await redis.zrange(keys.conversation_sent(conversation, sender), 0, -1))

    assert await stores.hot_window.trim(window_start_ms=stores.hot_window.window_start_ms()) == 3
    assert (await sent_by(alice), await sent_by(bob)) == ([recent[0].id, recent[2].id], [recent[1].id])
    assert await redis.zrange(keys.conversation_messages(conversation), 0, -1) == [m.id for m in recent]

    # Redis lost the hot window: hydrating from MongoDB restores each sender's ids too.
    await redis.delete(keys.conversation_messages(conversation), keys.conversation_sent(conversation, alice),
                       keys.conversation_sent(conversation, bob),
                       *[keys.message_key(conversation, m.id) for m in recent])
    assert await stores.hot_window.hydrate(window_start_ms=stores.hot_window.window_start_ms()) == 3
    assert (await sent_by(alice), await sent_by(bob)) == ([recent[0].id, recent[2].id], [recent[1].id])
    assert await redis.zrange(keys.conversation_messages(conversation), 0, -1) == [m.id for m in recent]
    [bobs] = await stores.member_state.states(bob, [conversation])
    assert (bobs.unread, bobs.read_up_to) == (2, old[-1].id)  # recent a and c, from the restored sets
