"""The player's voice map through the public API: every accepted format uploads with its
waveform and speech segments, and a sent voice message carries them to `sendMessage`,
`messageEvents` (created, and updated once transcribed), `history` and `message`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from api.app_server import AppServer
from api.dev_servers import EmbeddedServers
from tests.utils.audio import FORMATS, speak, upload
from tests.utils.graphql import GraphQLClient, register
from tests.utils.in_process import InProcessApp
from tests.utils.silence import silence
from tests.utils.ws import connect, user_channel, wait_for_subscribers

AUDIO_FIELDS = "id durationSeconds waveform speechSegments { start end }"
AUDIO = f"audio {{ {AUDIO_FIELDS} }}"
UPLOAD = f"mutation Upload($file: Upload!) {{ uploadAudio(file: $file) {{ {AUDIO_FIELDS} }} }}"
SEND = f"mutation Send($input: SendMessageInput!) {{ sendMessage(input: $input) {{ id {AUDIO} }} }}"
HISTORY = f"query H($partnerId: ID!) {{ history(partnerId: $partnerId) {{ edges {{ node {{ id {AUDIO} }} }} }} }}"
MESSAGE = f"query M($id: ID!) {{ message(id: $id) {{ id {AUDIO} }} }}"
EVENTS = f"subscription {{ messageEvents {{ type message {{ id transcriptionStatus {AUDIO} }} }} }}"
SENTENCE = "Please call me back tomorrow morning about the meeting."


async def _upload(gql: GraphQLClient, token: str, clip: Path, fmt: str) -> dict[str, Any]:
    _, suffix, content_type = FORMATS[fmt]
    result = await upload(gql.client, gql.url, token, clip.read_bytes(), f"voice{suffix}", content_type, query=UPLOAD)
    assert not result.get("errors"), result
    audio: dict[str, Any] = result["data"]["uploadAudio"]
    return audio


def _assert_speech(audio: dict[str, Any]) -> None:
    assert len(audio["waveform"]) == 64 and all(0 <= peak <= 1 for peak in audio["waveform"])
    assert max(audio["waveform"]) > 0.5
    segments = audio["speechSegments"]
    assert segments and all(0 <= s["start"] < s["end"] <= audio["durationSeconds"] for s in segments), audio


async def test_every_accepted_format_uploads_with_its_voice_map(in_process_app: InProcessApp, tmp_path: Path) -> None:
    async with in_process_app.client() as gql:
        alice = await register(gql)
        for fmt in FORMATS:
            _assert_speech(await _upload(gql, alice.token, speak(SENTENCE, tmp_path, fmt), fmt))
            quiet = await _upload(gql, alice.token, silence(tmp_path, fmt), fmt)
            assert len(quiet["waveform"]) == 64 and max(quiet["waveform"]) <= 0.01, (fmt, quiet)
            assert quiet["speechSegments"] == [], fmt


async def test_a_recording_uploaded_before_voice_maps_has_an_empty_one(
    in_process_app: InProcessApp, tmp_path: Path
) -> None:
    async with in_process_app.client() as gql:
        alice, bob = await register(gql), await register(gql)
        audio = await _upload(gql, alice.token, speak(SENTENCE, tmp_path, "ogg"), "ogg")
        mongo: AsyncMongoClient[Any] = AsyncMongoClient(in_process_app.mongodb_url)
        try:  # the GridFS metadata an older version stored
            await mongo[in_process_app.database]["audio.files"].update_one(
                {"_id": audio["id"]}, {"$unset": {"metadata.waveform": "", "metadata.speech_segments": ""}})
        finally:
            await mongo.close()
        sent = (await gql.ok(SEND, {"input": {"receiverId": bob.id, "audioId": audio["id"]}},
                             token=alice.token))["sendMessage"]
        assert (sent["audio"]["waveform"], sent["audio"]["speechSegments"]) == ([], [])
        history = (await gql.ok(HISTORY, {"partnerId": alice.id}, token=bob.token))["history"]["edges"]
        assert history[-1]["node"] == sent


async def test_a_voice_message_carries_its_map_everywhere(
    app: AppServer, gql: GraphQLClient, dev_servers: EmbeddedServers, tmp_path: Path
) -> None:
    alice, bob = await register(gql), await register(gql)
    audio = await _upload(gql, alice.token, speak(SENTENCE, tmp_path, "webm"), "webm")
    _assert_speech(audio)
    async with connect(app.ws_url, bob.token) as socket:
        await socket.subscribe(EVENTS)
        await wait_for_subscribers(dev_servers.redis_url, user_channel(bob.id))
        sent = (await gql.ok(SEND, {"input": {"receiverId": bob.id, "audioId": audio["id"]}},
                             token=alice.token))["sendMessage"]
        assert sent["audio"] == audio
        created = (await socket.next_payload())["data"]["messageEvents"]
        assert created["type"] == "CREATED" and created["message"]["audio"] == audio
        # Transcription rewrites the message: the map stays.
        updated = (await socket.next_payload(timeout=60))["data"]["messageEvents"]
        assert updated["type"] == "UPDATED" and updated["message"]["transcriptionStatus"] == "DONE"
        assert updated["message"]["audio"] == audio
    for viewer, partner in ((alice, bob), (bob, alice)):
        history = (await gql.ok(HISTORY, {"partnerId": partner.id}, token=viewer.token))["history"]["edges"]
        assert history[-1]["node"] == {"id": sent["id"], "audio": audio}
        assert (await gql.ok(MESSAGE, {"id": sent["id"]}, token=viewer.token))["message"]["audio"] == audio

