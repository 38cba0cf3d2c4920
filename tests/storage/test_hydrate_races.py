"""Restoring the hot window from MongoDB (after Redis lost its data) races with changes to the
messages it restores: a delete or an edit of a message Redis does not hold yet goes to
MongoDB. Whatever the order, the copy Redis ends with is MongoDB's latest revision: a deleted
message never comes back. The interleavings are forced by running the change at the exact
point between two steps, through the real stores."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from storage import keys
from storage.ids import id_timestamp_ms, new_id
from storage.message_changes import Change
from storage.records import StoredMessage, tombstone
from tests.storage.conftest import MessageStores


async def _archived(stores: MessageStores, text: str) -> StoredMessage:
    """A message of the hot window that MongoDB holds and Redis lost (a wiped Redis)."""
    alice, bob = new_id(), new_id()
    conversation = (await stores.direct(alice, bob)).id
    message_id = new_id()
    message = StoredMessage(id=message_id, kind="TEXT", conversation_id=conversation, sender_id=alice,
                            receiver_id=bob, text=text, sent_at_ms=id_timestamp_ms(message_id))
    assert not await stores.archive.upsert([message])
    return message


async def _delete(stores: MessageStores, message: StoredMessage) -> StoredMessage | None:
    return await stores.messages.changes.change(
        message.id, message.conversation_id, _tombstone_of)


def _tombstone_of(current: StoredMessage) -> Change | None:
    return None if current.deleted_at_ms else Change(tombstone(current, int(time.time() * 1000)), event="DELETED")


async def _hot_copy(stores: MessageStores, message: StoredMessage) -> dict[str, Any] | None:
    return await stores.redis.json().get(keys.message_key(message.conversation_id, message.id))


async def test_a_delete_landing_while_hydrate_holds_the_old_revision_stays_deleted(
    message_stores: MessageStores, monkeypatch: pytest.MonkeyPatch,
) -> None:
    stores = message_stores
    message = await _archived(stores, "take this back")
    real_since = stores.archive.since

    async def since_then_delete(first_id: str, *, batch_size: int) -> AsyncIterator[list[StoredMessage]]:
        async for batch in real_since(first_id, batch_size=batch_size):
            # hydrate has read the batch (revision 0); the sender deletes before it writes.
            deleted = await _delete(stores, message)
            assert deleted is not None and deleted.deleted_at_ms is not None
            yield batch

    monkeypatch.setattr(stores.archive, "since", since_then_delete)
    await stores.hot_window.hydrate(window_start_ms=stores.hot_window.window_start_ms())
    copy = await _hot_copy(stores, message)
    assert copy is not None and copy["text"] == "" and copy["deleted_at_ms"] is not None, copy
    assert copy["rev"] == (await stores.archive.revisions([message.id]))[message.id] == 1


async def test_a_delete_written_to_mongodb_after_hydrate_copied_the_old_revision_reaches_redis(
    message_stores: MessageStores, monkeypatch: pytest.MonkeyPatch,
) -> None:
    stores = message_stores
    message = await _archived(stores, "wrong chat")
    real_replace = stores.archive.replace_at_revision

    async def hydrate_then_replace(changed: StoredMessage, *, expected_rev: int) -> bool:
        # The delete found no hot copy (so it writes MongoDB); hydrate copies revision 0 now.
        assert await stores.hot_window.hydrate(window_start_ms=stores.hot_window.window_start_ms()) == 1
        return await real_replace(changed, expected_rev=expected_rev)

    monkeypatch.setattr(stores.archive, "replace_at_revision", hydrate_then_replace)
    assert await _delete(stores, message) is not None
    copy = await _hot_copy(stores, message)
    assert copy is not None and copy["text"] == "" and copy["rev"] == 1, copy
