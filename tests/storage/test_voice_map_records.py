"""A voice message carries its recording's waveform and speech segments through every copy of
it (the Redis document, pub/sub events, the MongoDB archive); documents written before the map
existed read as an empty map."""

from __future__ import annotations

import uuid

import orjson

from api.dev_servers import EmbeddedServers
from storage.archive import ArchiveStore
from storage.cold import MessageDoc
from storage.connections import open_mongo
from storage.ids import id_timestamp_ms, new_id
from storage.records import MessageEventPayload, StoredAudio, StoredMessage
from tests.conftest import mongodb_url

WAVEFORM = tuple(round(i / 63, 2) for i in range(64))
SEGMENTS = ((0.15, 1.2), (2.5, 3.99))


def _voice_message(audio: StoredAudio) -> StoredMessage:
    message_id = new_id()
    return StoredMessage(id=message_id, kind="VOICE", conversation_id=new_id(), sender_id=new_id(),
                         receiver_id=new_id(), text="", sent_at_ms=id_timestamp_ms(message_id), audio=audio,
                         transcription_status="PENDING")


def _audio(**map_fields: object) -> StoredAudio:
    return StoredAudio(new_id(), "audio/ogg", 12_345, 4.0, **map_fields)  # type: ignore[arg-type]


def test_the_map_survives_the_redis_document_and_events() -> None:
    message = _voice_message(_audio(waveform=WAVEFORM, speech_segments=SEGMENTS))
    document = orjson.loads(orjson.dumps(message.to_document()))  # what Redis stores and hands back
    assert document["audio"]["waveform"] == list(WAVEFORM)
    assert document["audio"]["speech_segments"] == [list(s) for s in SEGMENTS]
    assert StoredMessage.from_document(document) == message
    assert MessageEventPayload.decode(MessageEventPayload("CREATED", message).encode()).message == message
    # ~0.5 kB of JSON per voice message (64 peaks of two decimals and a few segments).
    assert len(orjson.dumps(document["audio"])) < 600


def test_a_document_from_before_the_map_reads_as_an_empty_map() -> None:
    message = _voice_message(_audio())
    document = message.to_document()
    for key in ("waveform", "speech_segments"):
        del document["audio"][key]
    old = StoredMessage.from_document(document)
    assert old.audio is not None and (old.audio.waveform, old.audio.speech_segments) == ((), ())
    assert old == message


async def test_the_map_survives_the_archive(dev_servers: EmbeddedServers) -> None:
    database = f"voice_map_{uuid.uuid4().hex[:8]}"
    client = await open_mongo(mongodb_url(dev_servers, database), database)
    try:
        collection = client[database][MessageDoc.Settings.name]
        archive = ArchiveStore(collection)
        mapped = _voice_message(_audio(waveform=WAVEFORM, speech_segments=SEGMENTS))
        old = _voice_message(_audio())
        await archive.upsert([mapped, old])
        await collection.update_one({"_id": old.id}, {"$unset": {"audio.waveform": "", "audio.speech_segments": ""}})
        assert await archive.get(mapped.id) == mapped
        assert await archive.get(old.id) == old
    finally:
        await client.drop_database(database)
        await client.close()
