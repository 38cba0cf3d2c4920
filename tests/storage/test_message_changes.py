"""Revision-checked changes: a change decided on a state that another change replaced meanwhile
is never written; it is decided again on the new state, in Redis and in MongoDB alike."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable

from storage import keys
from storage.ids import id_timestamp_ms, new_id
from storage.message_changes import Change, MessageChanges
from storage.messages import SENT
from storage.outbox import ensure_group
from storage.records import MessageEventPayload, StoredAudio, StoredMessage, StoredTranscript, next_revision
from tests.storage.conftest import MessageStores
from transcription.base import TranscriptResult
from transcription.worker import TranscriptionWorker


async def _voice(stores: MessageStores) -> StoredMessage:
    alice, bob = new_id(), new_id()
    direct = await stores.direct(alice, bob)
    message_id = new_id()
    voice = StoredMessage(id=message_id, kind="VOICE", conversation_id=direct.id, sender_id=alice, receiver_id=bob,
                          text="", sent_at_ms=id_timestamp_ms(message_id),
                          audio=StoredAudio(new_id(), "audio/ogg", 4, 1.0), transcription_status="PENDING")
    assert (await stores.send(voice)).status == SENT
    return voice


def _tombstone(message: StoredMessage) -> StoredMessage:
    return dataclasses.replace(message, text="", audio=None, transcription_status=None, transcript=None,
                               deleted_at_ms=123)


def _race_first_read(changes: MessageChanges, racing: Callable[[StoredMessage], StoredMessage]) -> None:
    """Make the next read race another change: `racing(found)` (its rev bumped) lands right
    after the state was read."""
    find: Callable[[str, str], Awaitable[StoredMessage | None]] = changes._find
    raced = False

    async def racing_find(message_id: str, conversation_id: str) -> StoredMessage | None:
        nonlocal raced
        found = await find(message_id, conversation_id)
        if found is not None and not raced:
            raced = True
            assert await changes.apply(found.rev, next_revision(racing(found)))
        return found

    changes._find = racing_find


async def _archived(stores: MessageStores, message: StoredMessage) -> None:
    """Only in MongoDB, as trimming leaves an old message."""
    await stores.archive.upsert([message])
    await stores.redis.delete(keys.message_key(message.conversation_id, message.id))


async def test_a_stale_update_is_refused_in_redis_and_in_mongodb(message_stores: MessageStores) -> None:
    stores = message_stores
    for archived in (False, True):
        voice = await _voice(stores)
        if archived:
            await _archived(stores, voice)
        transcribed = next_revision(voice, text="hello", transcription_status="DONE",
                                    transcript=StoredTranscript("hello", "fixed"))
        assert await stores.messages.changes.apply(voice.rev, next_revision(_tombstone(voice)), event="DELETED")
        assert not await stores.messages.update(transcribed)  # decided on rev 0; rev 1 is the tombstone
        found = await stores.messages.find(voice.id, conversation_id=voice.conversation_id)
        assert found is not None and found.deleted_at_ms == 123 and found.text == "" and found.rev == 1


async def test_a_transcript_racing_a_delete_never_brings_the_message_back(message_stores: MessageStores) -> None:
    stores = message_stores
    worker = TranscriptionWorker(stores.redis, messages=stores.messages, audio=None,  # type: ignore[arg-type]  # never read here
                                 transcriber=None)  # type: ignore[arg-type]
    result = TranscriptResult(text="hello there", engine="fixed")
    for archived in (False, True):
        voice = await _voice(stores)
        if archived:
            await _archived(stores, voice)
        _race_first_read(stores.messages.changes, _tombstone)
        await worker._settle(voice, result)  # reads PENDING, a delete lands, its write is refused, decided again
        found = await stores.messages.find(voice.id, conversation_id=voice.conversation_id)
        assert found is not None and found.deleted_at_ms == 123 and found.transcript is None and found.rev == 1
        stores.messages.changes._find = stores.messages._find_in


async def test_an_archived_message_never_publishes_an_older_revision_after_a_newer(
    message_stores: MessageStores,
) -> None:
    stores = message_stores
    voice = await _voice(stores)
    await _archived(stores, voice)
    changes = stores.messages.changes
    first = next_revision(voice, reactions=(("👍", ("a",)),))
    second = next_revision(first, reactions=())
    pubsub = stores.redis.pubsub()
    await pubsub.subscribe(keys.user_events(voice.sender_id))
    try:
        confirmed = await pubsub.get_message(timeout=5)  # subscribed before anything is published
        assert confirmed is not None and confirmed["type"] == "subscribe"
        assert await changes.apply(0, first) and await changes.apply(1, second)
        # The first change's event, had it been delayed past the second's, is dropped.
        published = keys.published_revision(voice.conversation_id, voice.id)
        late = [published, keys.conversation_members(voice.conversation_id)]
        assert await changes._publish_if_newer(keys=late, args=[1, b"late", keys.user_events(""), 60]) == 0
        revisions = []
        while (message := await pubsub.get_message(timeout=1)) is not None:
            if message["type"] == "message":
                revisions.append(MessageEventPayload.decode(message["data"]).message.rev)
        assert revisions == [1, 2]
    finally:
        await pubsub.aclose()


async def test_a_reaction_racing_a_transcript_keeps_both(message_stores: MessageStores) -> None:
    stores = message_stores
    await ensure_group(stores.redis)
    voice = await _voice(stores)
    changes = stores.messages.changes
    _race_first_read(changes, lambda found: dataclasses.replace(found, reactions=(("👍", ("someone",)),)))
    done = await changes.change(voice.id, voice.conversation_id, lambda m: Change(
        dataclasses.replace(m, text="hi", transcription_status="DONE")))
    assert done is not None and done.rev == 2
    assert done.reactions == (("👍", ("someone",)),) and done.transcription_status == "DONE"
    while await stores.persister().drain_once():
        pass
    assert await stores.archive.get(voice.id) == done


def test_edit_delete_and_reaction_state_survive_the_document_round_trip() -> None:
    message = StoredMessage(id="01JDOC0000000000000000000A", kind="TEXT", conversation_id="01JDOC0000000000000000000C",
                            sender_id="01JDOC0000000000000000000S", receiver_id=None, text="edited",
                            sent_at_ms=1_764_000_000_000, rev=4, edited_at_ms=1_764_000_000_500,
                            deleted_at_ms=1_764_000_001_000, reactions=(("👍", ("a", "b")), ("🇫🇷", ("c",))))
    assert StoredMessage.from_document(message.to_document()) == message
