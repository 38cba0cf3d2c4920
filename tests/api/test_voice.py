"""Voice messages end to end with the real local engine (faster-whisper tiny.en) on speech
spoken by espeak-ng, uploaded through the GraphQL multipart request spec."""

from __future__ import annotations

import io
import os
import socket
import subprocess
from pathlib import Path

import av
import httpx
import pytest

from api.app_server import AppServer
from api.dev_servers import EmbeddedServers
from media.signing import MediaSigner
from tests.conftest import TEST_JWT_SECRET
from tests.utils.audio import FORMATS, speak, upload, word_error_rate
from tests.utils.graphql import HISTORY, MESSAGE, SEND, GraphQLClient, register
from tests.utils.ws import connect, user_channel, wait_for_subscribers

VOICE_EVENTS = """subscription { messageEvents { type message { id kind text transcriptionStatus
  audio { id mimeType sizeBytes durationSeconds url }
  transcript { text confidence engine language words { word start end confidence } } } } }"""
VOICE_MESSAGE = """query M($id: ID!) { message(id: $id) { id kind text transcriptionStatus
  audio { url } transcript { text engine } } }"""
SENTENCES = {
    "webm": "Please call me back tomorrow morning about the meeting.",
    "ogg": "It is a lovely day today, so let us go for a long walk.",
    "mp3": "I will send you the report before lunch on Friday.",
    "wav": "Do not forget to buy milk and bread on the way home.",
    "m4a": "The project meeting has been moved to next Tuesday afternoon.",
}


@pytest.mark.parametrize("fmt", list(SENTENCES))
async def test_voice_message_is_transcribed_and_pushed_to_both(
    app: AppServer, gql: GraphQLClient, dev_servers: EmbeddedServers, tmp_path: Path, fmt: str
) -> None:
    alice, bob = await register(gql), await register(gql)
    sentence = SENTENCES[fmt]
    clip = speak(sentence, tmp_path, fmt)
    _, suffix, content_type = FORMATS[fmt]
    async with connect(app.ws_url, alice.token) as a, connect(app.ws_url, bob.token) as b:
        for socket_, user in ((a, alice), (b, bob)):
            await socket_.subscribe(VOICE_EVENTS)
            await wait_for_subscribers(dev_servers.redis_url, user_channel(user.id))
        uploaded = await upload(gql.client, gql.url, alice.token, clip.read_bytes(), f"voice{suffix}", content_type)
        audio = uploaded["data"]["uploadAudio"]
        assert audio["sizeBytes"] == clip.stat().st_size
        assert 2.0 < audio["durationSeconds"] < 8.0
        sent = (await gql.ok(SEND, {"input": {"receiverId": bob.id, "audioId": audio["id"]}},
                             token=alice.token))["sendMessage"]
        assert sent["kind"] == "VOICE" and sent["text"] == ""
        for socket_ in (a, b):
            created = (await socket_.next_payload())["data"]["messageEvents"]
            assert created["type"] == "CREATED"
            assert created["message"]["transcriptionStatus"] == "PENDING" and created["message"]["text"] == ""
            assert created["message"]["audio"]["id"] == audio["id"]
            updated = (await socket_.next_payload(timeout=60))["data"]["messageEvents"]
            assert updated["type"] == "UPDATED" and updated["message"]["id"] == sent["id"]
            message = updated["message"]
            assert message["transcriptionStatus"] == "DONE"
            transcript = message["transcript"]
            error_rate = word_error_rate(sentence, transcript["text"])
            assert error_rate <= 0.2, (sentence, transcript["text"], error_rate)
            assert message["text"] == transcript["text"]
            assert transcript["engine"] == "whisper:tiny.en" and transcript["language"] == "en"
            assert 0 < transcript["confidence"] <= 1
            assert transcript["words"] and all(w["start"] <= w["end"] for w in transcript["words"])
    # Every later read carries the transcript, and the audio plays for both.
    for viewer in (alice, bob):
        got = (await gql.ok(VOICE_MESSAGE, {"id": sent["id"]}, token=viewer.token))["message"]
        assert got["transcriptionStatus"] == "DONE" and got["text"] == transcript["text"]
        played = await gql.client.get(got["audio"]["url"])
        assert played.status_code == 200 and played.content == clip.read_bytes()
        assert played.headers["content-type"].startswith(audio["mimeType"])
    history = (await gql.ok(HISTORY, {"partnerId": alice.id}, token=bob.token))["history"]
    assert history["edges"][-1]["node"]["text"] == transcript["text"]


async def test_uploads_must_be_audio_whatever_they_claim(gql: GraphQLClient, tmp_path: Path) -> None:
    alice = await register(gql)
    for content, name, content_type in [
        (os.urandom(50_000), "voice.webm", "audio/webm"),
        (b"hello world " * 1000, "voice.mp3", "audio/mpeg"),
        (b"", "voice.ogg", "audio/ogg"),
        (b"%PDF-1.4\n" + os.urandom(5000), "voice.wav", "audio/wav"),
    ]:
        result = await upload(gql.client, gql.url, alice.token, content, name, content_type)
        assert result["errors"][0]["extensions"] == {"code": "UNSUPPORTED_MEDIA_TYPE", "field": "file"}, name
    # Real audio with a lying name and type is accepted and labelled by its content.
    clip = speak("Testing one two three.", tmp_path, "ogg")
    result = await upload(gql.client, gql.url, alice.token, clip.read_bytes(), "notes.txt", "text/plain")
    assert result["data"]["uploadAudio"]["mimeType"] == "audio/ogg"


async def test_uploads_need_a_token(gql: GraphQLClient, tmp_path: Path) -> None:
    clip = speak("Testing one two three.", tmp_path, "ogg")
    result = await upload(gql.client, gql.url, "", clip.read_bytes(), "v.ogg", "audio/ogg")
    assert result["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def _raw_post_headers(app: AppServer, token: str, length: int | None, boundary: str) -> bytes:
    lines = [
        "POST /graphql HTTP/1.1", f"Host: 127.0.0.1:{app.port}", f"Authorization: Bearer {token}",
        f"Content-Type: multipart/form-data; boundary={boundary}",
        f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked",
        "", "",
    ]
    return "\r\n".join(lines).encode()


def _read_response(sock: socket.socket) -> tuple[int, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    length = int(next(
        (line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), b"0"
    ))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, body


async def test_eleven_megabytes_is_refused_before_it_is_read(app: AppServer, gql: GraphQLClient) -> None:
    alice = await register(gql)
    size = 11 * 1024 * 1024
    # Declared too large: answered at once, while the client has sent only the headers.
    with socket.create_connection(("127.0.0.1", app.port), timeout=10) as sock:
        sock.sendall(_raw_post_headers(app, alice.token, size, "b"))
        status, body = _read_response(sock)
    assert status == 413 and b"PAYLOAD_TOO_LARGE" in body
    # Chunked, no length declared: refused as soon as the stream passes the limit.
    sent = 0
    with socket.create_connection(("127.0.0.1", app.port), timeout=10) as sock:
        sock.sendall(_raw_post_headers(app, alice.token, None, "b"))
        preamble = (b'--b\r\nContent-Disposition: form-data; name="operations"\r\n\r\n'
                    b'{"query":"mutation($f: Upload!){uploadAudio(file:$f){id}}","variables":{"f":null}}\r\n'
                    b'--b\r\nContent-Disposition: form-data; name="map"\r\n\r\n{"0":["variables.f"]}\r\n'
                    b'--b\r\nContent-Disposition: form-data; name="0"; filename="big.webm"\r\n'
                    b'Content-Type: audio/webm\r\n\r\n')
        sock.sendall(b"%x\r\n%s\r\n" % (len(preamble), preamble))
        chunk = os.urandom(256 * 1024)
        try:
            while sent < size:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        status, body = _read_response(sock)
    assert status == 413 and b"PAYLOAD_TOO_LARGE" in body


async def test_sending_uploads_rules(gql: GraphQLClient, tmp_path: Path) -> None:
    alice, bob, carol = await register(gql), await register(gql), await register(gql)
    clip = speak("Hello there, general Kenobi.", tmp_path, "ogg").read_bytes()
    audio = (await upload(gql.client, gql.url, alice.token, clip, "v.ogg", "audio/ogg"))["data"]["uploadAudio"]
    # Someone else's upload: as if it did not exist.
    error = await gql.error(SEND, {"input": {"receiverId": alice.id, "audioId": audio["id"]}}, token=carol.token)
    assert error["extensions"] == {"code": "NOT_FOUND", "field": "audioId"}
    both = await gql.error(SEND, {"input": {"receiverId": bob.id, "audioId": audio["id"], "text": "x"}},
                           token=alice.token)
    assert both["extensions"] == {"code": "BAD_USER_INPUT", "field": "audioId"}
    first = (await gql.ok(SEND, {"input": {"receiverId": bob.id, "audioId": audio["id"], "clientId": "v1"}},
                          token=alice.token))["sendMessage"]
    # A retry with the same clientId is the same message; a new send of the upload is refused.
    again = (await gql.ok(SEND, {"input": {"receiverId": bob.id, "audioId": audio["id"], "clientId": "v1"}},
                          token=alice.token))["sendMessage"]
    assert again["id"] == first["id"]
    twice = await gql.error(SEND, {"input": {"receiverId": bob.id, "audioId": audio["id"]}}, token=alice.token)
    assert twice["extensions"] == {"code": "CONFLICT", "field": "audioId"}
    malformed = await gql.error(SEND, {"input": {"receiverId": bob.id, "audioId": "nope"}}, token=alice.token)
    assert malformed["extensions"] == {"code": "BAD_USER_INPUT", "field": "audioId"}


async def test_media_serves_ranges_and_refuses_bad_signatures(
    gql: GraphQLClient, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    alice, bob, carol = await register(gql), await register(gql), await register(gql)
    clip = speak("Range requests let players seek.", tmp_path, "mp3").read_bytes()
    audio = (await upload(gql.client, gql.url, alice.token, clip, "v.mp3", "audio/mpeg"))["data"]["uploadAudio"]
    sent = (await gql.ok(SEND, {"input": {"receiverId": bob.id, "audioId": audio["id"]}},
                         token=alice.token))["sendMessage"]
    url = (await gql.ok(VOICE_MESSAGE, {"id": sent["id"]}, token=bob.token))["message"]["audio"]["url"]

    full = await http.get(url)
    assert full.status_code == 200 and full.content == clip
    assert full.headers["content-type"] == "audio/mpeg" and full.headers["accept-ranges"] == "bytes"
    assert int(full.headers["content-length"]) == len(clip)
    part = await http.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == clip[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(clip)}"
    tail = await http.get(url, headers={"Range": "bytes=-50"})
    assert tail.status_code == 206 and tail.content == clip[-50:]
    assert (await http.get(url, headers={"Range": f"bytes={len(clip)}-"})).status_code == 416
    assert (await http.get(url, headers={"If-None-Match": full.headers["etag"]})).status_code == 304

    base, _, query = url.partition("?")
    assert (await http.get(base)).status_code == 403
    assert (await http.get(url[:-2] + ("AA" if not url.endswith("AA") else "BB"))).status_code == 403
    signer = MediaSigner.from_secret(TEST_JWT_SECRET)
    query_of = dict(part.split("=", 1) for part in query.split("&"))
    expired = signer.url(audio["id"], viewer_id=query_of["u"], conversation_id=query_of["c"],
                         now=1_000_000)  # signed correctly, long expired
    assert (await http.get(base.split("/media/")[0] + expired)).status_code == 403
    other = (await upload(gql.client, gql.url, carol.token, clip, "c.mp3", "audio/mpeg"))["data"]["uploadAudio"]
    swapped = base.replace(audio["id"], other["id"]) + "?" + query  # a signature is for one id
    assert (await http.get(swapped)).status_code == 403
    as_carol = url.replace(f"u={bob.id}", f"u={carol.id}")  # and for one viewer
    assert as_carol != url and (await http.get(as_carol)).status_code == 403
    # A third user never obtains a URL for it.
    assert (await gql.error(VOICE_MESSAGE, {"id": sent["id"]}, token=carol.token))["extensions"]["code"] == "NOT_FOUND"
    carol_history = (await gql.ok(HISTORY, {"partnerId": alice.id}, token=carol.token))["history"]
    assert carol_history["edges"] == []
    assert MESSAGE  # the text-message query stays valid for voice messages too


async def test_a_recording_without_duration_or_index_is_stored_seekable(
    gql: GraphQLClient, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    """MediaRecorder's webm carries neither a duration nor cues: browsers then treat it as a
    live stream and can seek only within what they have downloaded. The stored copy has both
    (the same Opus packets, remuxed), so a player seeks anywhere at once."""
    alice = await register(gql)
    wav = speak("A recording straight from the browser's microphone.", tmp_path)
    live = tmp_path / "live.webm"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(wav), "-ar", "48000", "-c:a", "libopus",
                    "-b:a", "32k", "-live", "1", "-f", "webm", str(live)], check=True, capture_output=True)
    assert _container(live.read_bytes()) == (None, False)  # as MediaRecorder writes it

    audio = (await upload(gql.client, gql.url, alice.token, live.read_bytes(), "voice.webm",
                          "audio/webm;codecs=opus"))["data"]["uploadAudio"]
    served = await http.get(audio["url"])
    assert served.status_code == 200 and served.headers["content-type"] == "audio/webm"
    assert audio["sizeBytes"] == len(served.content)
    duration, indexed = _container(served.content)
    assert indexed and duration is not None and abs(duration - audio["durationSeconds"]) < 0.05
    assert _packets(served.content) == _packets(live.read_bytes())  # nothing re-encoded


def _container(content: bytes) -> tuple[float | None, bool]:
    """(the duration the header declares, whether it has cues for seeking)."""
    with av.open(io.BytesIO(content)) as container:
        duration = None if container.duration is None else container.duration / av.time_base
        return duration, b"\x1c\x53\xbb\x6b" in content  # the Matroska Cues element id


def _packets(content: bytes) -> list[bytes]:
    with av.open(io.BytesIO(content)) as container:
        return [bytes(packet) for packet in container.demux(audio=0) if packet.size]
