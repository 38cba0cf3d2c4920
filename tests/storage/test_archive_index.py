"""The slim search entries of archived messages: the trim leaves one per message, a change of an
archived message (an edit, a delete's tombstone) is indexed in its place unless a newer revision
already is, nothing is indexed twice while the message is hot, and a rebuild restores them."""

from __future__ import annotations

import dataclasses
import time

from storage import keys
from storage.hot import ensure_indexes
from storage.ids import first_id_at, id_timestamp_ms, new_id
from storage.outbox import ensure_group
from storage.records import StoredConversation, StoredMessage
from storage.search import SearchIndex
from tests.storage.conftest import MessageStores
from tests.utils.search import unique_word


def _text(conversation: StoredConversation, sender: str, text: str, sent_at_ms: int) -> StoredMessage:
    message_id = new_id(sent_at_ms)
    return StoredMessage(id=message_id, kind="TEXT", conversation_id=conversation.id, sender_id=sender,
                         receiver_id=conversation.partner_of(sender), text=text, sent_at_ms=id_timestamp_ms(message_id))


async def _found(stores: MessageStores, conversation_id: str, word: str) -> list[str]:
    _, matches = await SearchIndex(stores.redis, stores.archive).messages(
        conversation_ids=[conversation_id], terms=[word], prefix_last=False, limit=10)
    return [m.key for m in matches]


async def test_archived_entries_follow_edits_deletes_and_a_rebuild(message_stores: MessageStores) -> None:
    stores = message_stores
    await ensure_indexes(stores.redis)
    await ensure_group(stores.redis)
    alice, bob = new_id(), new_id()
    direct = await stores.direct(alice, bob)
    first, edited = unique_word("first"), unique_word("edited")
    two_days_ago = int(time.time() * 1000) - 2 * 86400 * 1000
    old = _text(direct, alice, f"the {first} draft", two_days_ago)
    hot = _text(direct, bob, f"a hot {first}", int(time.time() * 1000))
    for message in (old, hot):
        await stores.send(message)
    persister = stores.persister()
    while await persister.drain_once():
        pass
    index = stores.hot_window.archive_index
    assert not await index.reindex(dataclasses.replace(hot, text="never", rev=1))  # hot: its document is searched
    assert await stores.hot_window.trim(window_start_ms=stores.hot_window.window_start_ms()) == 1
    entry = keys.archived_message_entry(direct.id, old.id)
    assert sorted(await _found(stores, direct.id, first)) == sorted([keys.message_key(direct.id, hot.id), entry])

    assert await index.reindex(dataclasses.replace(old, text=f"the {edited} draft", rev=1))
    assert not await index.reindex(dataclasses.replace(old, text="a late older write", rev=1))  # same revision
    assert await _found(stores, direct.id, edited) == [entry]
    assert await _found(stores, direct.id, first) == [keys.message_key(direct.id, hot.id)]
    assert await index.reindex(dataclasses.replace(old, text="", rev=2))  # deleted: a tombstone matches nothing
    assert not await index.reindex(dataclasses.replace(old, text=f"the {edited} draft", rev=1))
    assert await _found(stores, direct.id, edited) == []

    await index.unindex(direct.id, old.id)
    assert not await stores.redis.exists(entry)
    # After a loss: the archive's revision comes back (the MongoDB copy here is the first one).
    assert await index.rebuild(stores.archive, before_id=first_id_at(two_days_ago + 1000)) == 1
    assert await _found(stores, direct.id, first) != []
    assert await index.rebuild(stores.archive, before_id=first_id_at(two_days_ago + 1000)) == 0  # once per dataset
