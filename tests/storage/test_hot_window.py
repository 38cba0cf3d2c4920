"""Trimming the hot window never drops from Redis a revision MongoDB lacks, and a message held
back that way leaves as soon as the archive has its new revision."""

from __future__ import annotations

import time

from storage.hot_window import hot_member
from storage.ids import new_id
from storage.messages import SENT
from storage.outbox import ensure_group
from storage.records import StoredMessage, next_revision
from tests.storage.conftest import MessageStores

TWO_DAYS_AGO_MS = int((time.time() - 2 * 86400) * 1000)  # outside the fixture's one-day window


def _old_message(text: str, conversation_id: str, sender_id: str, receiver_id: str, offset_ms: int) -> StoredMessage:
    sent_at_ms = TWO_DAYS_AGO_MS + offset_ms
    return StoredMessage(id=new_id(sent_at_ms), kind="TEXT", conversation_id=conversation_id, sender_id=sender_id,
                         receiver_id=receiver_id, text=text, sent_at_ms=sent_at_ms)


async def _sent_and_archived(stores: MessageStores, count: int) -> list[StoredMessage]:
    """`count` messages of one conversation, oldest first, sent two days ago and archived."""
    sender_id, receiver_id = new_id(), new_id()
    conversation = await stores.direct(sender_id, receiver_id)
    sent = [_old_message(f"message {i}", conversation.id, sender_id, receiver_id, i) for i in range(count)]
    for message in sent:
        assert (await stores.send(message)).status == SENT
    await _drain_outbox(stores)
    assert await stores.archive.revisions([m.id for m in sent]) == {m.id: 0 for m in sent}
    return sent


async def _drain_outbox(stores: MessageStores) -> None:
    persister = stores.persister()
    await ensure_group(stores.redis)
    while await persister.drain_once():
        pass


async def test_a_message_updated_between_the_check_and_the_delete_stays_hot(message_stores: MessageStores) -> None:
    stores = message_stores
    voice, later = await _sent_and_archived(stores, 2)
    entries = [hot_member(voice), hot_member(later)]
    checked, orphans = await stores.hot_window.archived_prefix(entries)
    assert (checked, orphans) == ([(entries[0], 0), (entries[1], 0)], [])

    transcribed = next_revision(voice, text="the transcript")
    await stores.messages.update(transcribed)  # lands after the check: MongoDB still has rev 0

    assert await stores.hot_window.remove_checked(checked) == 0
    # Kept, and everything newer with it: Redis still holds the newest part of the conversation.
    assert await stores.messages.get_hot(voice.conversation_id, [voice.id, later.id]) == [transcribed, later]
    assert await stores.messages.page(voice.conversation_id, before=None, limit=10) == [later, transcribed]


async def test_trimming_proceeds_once_the_archive_has_the_new_revision(message_stores: MessageStores) -> None:
    stores = message_stores
    voice, later = await _sent_and_archived(stores, 2)
    transcribed = next_revision(voice, text="the transcript")
    await stores.messages.update(transcribed)
    window_start_ms = stores.hot_window.window_start_ms()

    assert await stores.hot_window.trim(window_start_ms=window_start_ms) == 0  # MongoDB has rev 0 only

    await _drain_outbox(stores)  # the update's outbox entry: rev 1 archived
    await stores.archive.upsert([voice])  # a stalled persister's late write of rev 0 changes nothing
    assert await stores.archive.revisions([voice.id]) == {voice.id: 1}

    assert await stores.hot_window.trim(window_start_ms=window_start_ms) == 2
    assert await stores.messages.get_hot(voice.conversation_id, [voice.id, later.id]) == []
    assert await stores.messages.page(voice.conversation_id, before=None, limit=10) == [later, transcribed]
    assert await stores.archive.get(voice.id) == transcribed
