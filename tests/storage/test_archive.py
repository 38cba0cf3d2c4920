"""The archive's idempotent write path on the real MongoDB-wire server: new messages are
inserted in one batch, already archived ones are replaced by their latest state, never by an
older revision."""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator

import pytest

from api.dev_servers import EmbeddedServers
from bench.send_cost import counters_installed, counting
from storage.archive import ArchiveStore, to_doc
from storage.cold import MessageDoc
from storage.connections import open_mongo
from storage.ids import id_timestamp_ms, new_id
from storage.records import StoredMessage
from tests.conftest import mongodb_url


def _message(text: str) -> StoredMessage:
    message_id = new_id()
    return StoredMessage(id=message_id, kind="TEXT", conversation_id=new_id(), sender_id=new_id(),
                         receiver_id=new_id(), text=text, sent_at_ms=id_timestamp_ms(message_id))


@pytest.fixture
async def archive(dev_servers: EmbeddedServers) -> AsyncIterator[ArchiveStore]:
    """The archive on a database of its own, dropped afterwards."""
    database = f"archive_{uuid.uuid4().hex[:8]}"
    client = await open_mongo(mongodb_url(dev_servers, database), database)
    try:
        yield ArchiveStore(client[database][MessageDoc.Settings.name])
    finally:
        await client.drop_database(database)
        await client.close()


async def test_new_messages_are_inserted_and_archived_ones_replaced_by_their_latest_state(
    archive: ArchiveStore,
) -> None:
    first, second = _message("one"), _message("two")
    await archive.upsert([first, second])

    edited = dataclasses.replace(second, text="two, edited", rev=1)
    third = _message("three")
    # A replayed batch mixing an unchanged, a changed and a new message.
    await archive.upsert([first, edited, third])
    await archive.upsert([edited])

    assert await archive.collection.count_documents({}) == 3
    stored = {m.id: m for m in [await archive.get(i) for i in (first.id, second.id, third.id)] if m}
    assert stored[first.id] == first
    assert stored[second.id] == edited
    assert stored[third.id] == third


async def test_an_older_revision_never_replaces_a_newer_one(archive: ArchiveStore) -> None:
    voice = _message("")
    transcribed = dataclasses.replace(voice, text="the transcript", rev=2)
    await archive.upsert([transcribed])

    # A stalled persister's late batch: an older revision of it next to a new message.
    stale = dataclasses.replace(voice, text="", rev=1)
    new = _message("new")
    await archive.upsert([stale, new])  # a stale write is a no-op, not an error

    assert await archive.get(voice.id) == transcribed
    assert await archive.get(new.id) == new

    # A document archived before revisions existed counts as revision 0, like `revisions` reads it.
    legacy = _message("legacy")
    legacy_doc = to_doc(legacy)
    del legacy_doc["rev"]
    await archive.collection.insert_one(legacy_doc)
    await archive.upsert([dataclasses.replace(legacy, text="legacy, edited", rev=1)])
    assert (await archive.revisions([legacy.id]), (await archive.get(legacy.id) or legacy).text) == (
        {legacy.id: 1}, "legacy, edited")


async def test_reading_every_message_since_an_id_is_one_query_in_batches(archive: ArchiveStore) -> None:
    """Restoring Redis reads the whole archive in id order. One query read in batches, not one
    query per batch: a range query sorts anew each time, which made a restore over 25,000
    messages take minutes on the MongoDB-wire server (~2 s per batch of 500)."""
    messages = [_message(f"m{n}") for n in range(1_200)]
    await archive.upsert(messages)
    with counters_installed(), counting() as tally:
        batches = [batch async for batch in archive.since(messages[100].id, batch_size=500)]
    assert [m.id for batch in batches for m in batch] == [m.id for m in messages[100:]]
    assert [len(batch) for batch in batches] == [500, 500, 100]
    assert tally.mongo.count("find") == 1
    with counters_installed(), counting() as tally:
        async with contextlib.aclosing(archive.since("", batch_size=500)) as reading:
            async for _ in reading:
                break  # a reader that stops early: its cursor is closed
    assert tally.mongo.count("find") == 1 and "killCursors" in tally.mongo


async def test_reading_the_recent_client_ids_is_one_query_in_batches(archive: ArchiveStore) -> None:
    """Restoring the clientId reservations reads the recent messages in id order: one query too."""
    messages = [dataclasses.replace(_message(f"m{n}"), client_id=f"c{n}" if n % 3 else None) for n in range(1_200)]
    await archive.upsert(messages)
    with counters_installed(), counting() as tally:
        rows = [row async for batch in archive.client_ids_since(messages[100].id, batch_size=500) for row in batch]
    assert rows == [(m.sender_id, m.client_id, m.id, m.sent_at_ms) for m in messages[100:] if m.client_id]
    assert tally.mongo.count("find") == 1
