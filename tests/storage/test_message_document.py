"""The Redis document of a message carries every field (it is built by hand, not by asdict)."""

from __future__ import annotations

import dataclasses

from storage.hot import MessageHot
from storage.records import MessageEventPayload, StoredAudio, StoredMessage, StoredTranscript, StoredWord


def _voice_message() -> StoredMessage:
    return StoredMessage(
        id="01JDOC0000000000000000000A", kind="VOICE", conversation_id="01JDOC0000000000000000000C",
        sender_id="01JDOC0000000000000000000S", receiver_id="01JDOC0000000000000000000R", text="",
        sent_at_ms=1_764_000_000_000, client_id="c-1",
        audio=StoredAudio("01JDOC0000000000000000000U", "audio/ogg", 1234, 2.5), transcription_status="DONE",
        transcript=StoredTranscript("hello", "whisper", 0.9, "en", (StoredWord("hello", 0.0, 0.4, 0.9),)), rev=3,
        reply_to_id="01JDOC0000000000000000000Q",
    )


def test_every_field_survives_the_round_trip() -> None:
    message = _voice_message()
    document = message.to_document()
    assert {f.name for f in dataclasses.fields(StoredMessage)} - {"id"} <= set(document)
    assert StoredMessage.from_document(document) == message
    assert MessageEventPayload.decode(MessageEventPayload("UPDATED", message).encode()).message == message


def test_a_message_that_replies_to_nothing_carries_no_reply_field() -> None:
    plain = dataclasses.replace(_voice_message(), reply_to_id=None)
    document = plain.to_document()
    assert "reply_to_id" not in document  # written only on replies: other documents stay as small
    assert StoredMessage.from_document(document) == plain


def test_a_group_message_has_no_receiver_and_keeps_its_conversation() -> None:
    group_message = dataclasses.replace(_voice_message(), receiver_id=None)
    document = group_message.to_document()
    assert (document["conversation_id"], document["receiver_id"]) == ("01JDOC0000000000000000000C", None)
    assert StoredMessage.from_document(document) == group_message
    assert MessageEventPayload.decode(MessageEventPayload("CREATED", group_message).encode()).message == group_message
    # The hand-built document is in the shape of the model RediSearch indexes (search filters
    # by `conversation_id`): no field of the model is missing from it.
    assert set(MessageHot.model_fields) - {"pk"} <= set(document)
