"""The Redis document of a message carries every field (it is built by hand, not by asdict)."""

from __future__ import annotations

import dataclasses

from storage.records import MessageEventPayload, StoredAudio, StoredMessage, StoredTranscript, StoredWord


def _voice_message() -> StoredMessage:
    return StoredMessage(
        id="01JDOC0000000000000000000A", kind="VOICE", sender_id="01JDOC0000000000000000000S",
        receiver_id="01JDOC0000000000000000000R", text="", sent_at_ms=1_764_000_000_000, client_id="c-1",
        audio=StoredAudio("01JDOC0000000000000000000U", "audio/ogg", 1234, 2.5), transcription_status="DONE",
        transcript=StoredTranscript("hello", "whisper", 0.9, "en", (StoredWord("hello", 0.0, 0.4, 0.9),)), rev=3,
    )


def test_every_field_survives_the_round_trip() -> None:
    message = _voice_message()
    document = message.to_document()
    assert {f.name for f in dataclasses.fields(StoredMessage)} - {"id"} <= set(document)
    assert StoredMessage.from_document(document) == message
    assert MessageEventPayload.decode(MessageEventPayload("UPDATED", message).encode()).message == message


def test_participants_and_conversation_are_derived() -> None:
    document = _voice_message().to_document()
    assert document["participants"] == sorted([document["sender_id"], document["receiver_id"]])
    assert document["conversation"] == _voice_message().conversation
