"""The Deepgram engine against a local server that speaks Deepgram's protocol, the disabled
engine, retries and failure, and a transcription that survives an API crash."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app_server import AppServer
from tests.utils.audio import speak, upload
from tests.utils.fake_deepgram import FakeDeepgram, Outcome, listen_response
from tests.utils.graphql import SEND, Account, GraphQLClient, register

STATUS = """query M($id: ID!) { message(id: $id) { id text transcriptionStatus
  transcript { text confidence engine language words { word start end confidence } } } }"""
RETRY = "mutation R($id: ID!) { retryTranscription(messageId: $id) { id transcriptionStatus text } }"
API_KEY = "dg-test-key-123"
BEST = "Please call me back tomorrow morning."


def deepgram_env(fake: FakeDeepgram, **extra: str) -> dict[str, str]:
    return {"STT_ENGINE": "deepgram", "DEEPGRAM_URL": fake.url, "DEEPGRAM_API_KEY": API_KEY,
            "TRANSCRIPTION_RETRY_SECONDS": "0.2", **extra}


@pytest.fixture(scope="module")
async def fake() -> AsyncIterator[FakeDeepgram]:
    with FakeDeepgram() as server:
        yield server


@pytest.fixture(scope="module")
def deepgram_app(app_factory: Callable[..., AppServer], own_deployment: Callable[[], dict[str, str]],
                 fake: FakeDeepgram) -> AppServer:
    env = deepgram_env(fake, DEEPGRAM_TIMEOUT_SECONDS="1", TRANSCRIPTION_MAX_ATTEMPTS="2")
    return app_factory(**own_deployment(), **env).start()


async def send_voice(gql: GraphQLClient, sender: Account, receiver: Account, folder: Path,
                     fmt: str = "webm") -> dict[str, Any]:
    clip = speak("Please call me back tomorrow morning.", folder, fmt)
    content_type = {"webm": "audio/webm", "ogg": "audio/ogg"}[fmt]
    audio = (await upload(gql.client, gql.url, sender.token, clip.read_bytes(), f"v.{fmt}", content_type))
    audio_id = audio["data"]["uploadAudio"]["id"]
    return (await gql.ok(SEND, {"input": {"receiverId": receiver.id, "audioId": audio_id}},
                         token=sender.token))["sendMessage"]


async def settled(gql: GraphQLClient, viewer: Account, message_id: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        message = (await gql.ok(STATUS, {"id": message_id}, token=viewer.token))["message"]
        if message["transcriptionStatus"] != "PENDING" or time.monotonic() > deadline:
            return message
        await asyncio.sleep(0.1)


async def test_request_shape_and_the_best_alternative_wins(
    deepgram_app: AppServer, fake: FakeDeepgram, tmp_path: Path
) -> None:
    fake.answer(Outcome(200, listen_response([("Please call me back tomorrow morning", 0.71),
                                              (BEST, 0.98), ("Please fall back tomorrow mourning.", 0.42)])))
    fake.requests.clear()
    async with httpx.AsyncClient(timeout=30) as http:
        gql = GraphQLClient(http, deepgram_app.graphql_url)
        alice, bob = await register(gql), await register(gql)
        sent = await send_voice(gql, alice, bob, tmp_path)
        message = await settled(gql, bob, sent["id"])
    assert message["transcriptionStatus"] == "DONE"
    assert message["text"] == BEST and message["transcript"]["confidence"] == 0.98
    assert message["transcript"]["engine"] == "deepgram"
    words = message["transcript"]["words"]
    assert [w["word"] for w in words] == BEST.split()  # punctuated_word preferred
    request = fake.requests[0]
    assert request["path"] == "/v1/listen"
    assert request["headers"]["authorization"] == f"Token {API_KEY}"
    assert request["headers"]["content-type"] == "audio/webm"  # detected, not claimed
    assert request["query"] == {"model": "nova-2", "punctuate": "true", "smart_format": "true"}
    assert request["size"] > 1000


async def test_rate_limited_then_ok_is_retried(deepgram_app: AppServer, fake: FakeDeepgram, tmp_path: Path) -> None:
    fake.answer(Outcome(429, {"err_code": "TOO_MANY_REQUESTS"}), Outcome(200, listen_response([(BEST, 0.9)])))
    fake.requests.clear()
    async with httpx.AsyncClient(timeout=30) as http:
        gql = GraphQLClient(http, deepgram_app.graphql_url)
        alice, bob = await register(gql), await register(gql)
        message = await settled(gql, alice, (await send_voice(gql, alice, bob, tmp_path))["id"])
    assert message["transcriptionStatus"] == "DONE" and message["text"] == BEST
    assert len(fake.requests) == 2


async def test_repeated_server_errors_end_in_failed_and_retry_recovers(
    deepgram_app: AppServer, fake: FakeDeepgram, tmp_path: Path
) -> None:
    fake.answer(then=Outcome(500, {"err_code": "INTERNAL"}))
    fake.requests.clear()
    async with httpx.AsyncClient(timeout=30) as http:
        gql = GraphQLClient(http, deepgram_app.graphql_url)
        alice, bob = await register(gql), await register(gql)
        sent = await send_voice(gql, alice, bob, tmp_path)
        failed = await settled(gql, bob, sent["id"], timeout=60)
        assert failed["transcriptionStatus"] == "FAILED" and failed["text"] == "" and failed["transcript"] is None
        assert len(fake.requests) == 6  # 3 tries per attempt, 2 attempts
        assert "transcription failed" in deepgram_app.log()

        # Only participants may retry, and only a FAILED transcription.
        carol = await register(gql)
        assert (await gql.error(RETRY, {"id": sent["id"]}, token=carol.token))["extensions"]["code"] == "NOT_FOUND"
        fake.answer(then=Outcome(200, listen_response([(BEST, 0.95)])))
        retried = (await gql.ok(RETRY, {"id": sent["id"]}, token=bob.token))["retryTranscription"]
        assert retried["transcriptionStatus"] == "PENDING"
        done = await settled(gql, bob, sent["id"])
        assert done["transcriptionStatus"] == "DONE" and done["text"] == BEST
        again = await gql.error(RETRY, {"id": sent["id"]}, token=bob.token)
        assert again["extensions"] == {"code": "CONFLICT", "field": "messageId"}
    fake.answer(then=Outcome(500, {"err_code": "INTERNAL"}))


async def test_a_client_error_is_final(deepgram_app: AppServer, fake: FakeDeepgram, tmp_path: Path) -> None:
    fake.answer(then=Outcome(401, {"err_code": "INVALID_AUTH"}))
    fake.requests.clear()
    async with httpx.AsyncClient(timeout=30) as http:
        gql = GraphQLClient(http, deepgram_app.graphql_url)
        alice, bob = await register(gql), await register(gql)
        message = await settled(gql, bob, (await send_voice(gql, alice, bob, tmp_path))["id"])
    assert message["transcriptionStatus"] == "FAILED"
    assert len(fake.requests) == 1


async def test_a_slow_server_times_out(deepgram_app: AppServer, fake: FakeDeepgram, tmp_path: Path) -> None:
    fake.answer(then=Outcome(200, listen_response([(BEST, 0.9)]), delay=3))  # the app waits 1 s
    fake.requests.clear()
    async with httpx.AsyncClient(timeout=30) as http:
        gql = GraphQLClient(http, deepgram_app.graphql_url)
        alice, bob = await register(gql), await register(gql)
        message = await settled(gql, bob, (await send_voice(gql, alice, bob, tmp_path))["id"], timeout=60)
    assert message["transcriptionStatus"] == "FAILED"
    assert "deepgram timed out" in deepgram_app.log()
    fake.answer(then=Outcome(500, {"err_code": "INTERNAL"}))


async def test_a_pending_transcription_survives_an_api_crash(
    app_factory: Callable[..., AppServer], own_deployment: Callable[[], dict[str, str]],
    fake: FakeDeepgram, tmp_path: Path
) -> None:
    env = deepgram_env(fake, DEEPGRAM_TIMEOUT_SECONDS="30", TRANSCRIPTION_CLAIM_IDLE_SECONDS="2")
    server = app_factory(**own_deployment(), **env)
    server.start()
    fake.answer(then=Outcome(200, listen_response([(BEST, 0.9)]), delay=20))
    fake.requests.clear()
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            gql = GraphQLClient(http, server.graphql_url)
            alice, bob = await register(gql), await register(gql)
            sent = await send_voice(gql, alice, bob, tmp_path)
            deadline = time.monotonic() + 20
            while not fake.requests and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert fake.requests, "the worker picked the job up"
            server.kill()  # mid-transcription
            fake.answer(then=Outcome(200, listen_response([(BEST, 0.9)])))
            server.start()
            message = await settled(gql, bob, sent["id"], timeout=60)
        assert message["transcriptionStatus"] == "DONE" and message["text"] == BEST
        assert len(fake.requests) >= 2
    finally:
        server.stop()
        fake.answer(then=Outcome(500, {"err_code": "INTERNAL"}))


async def test_disabled_engine_stores_playable_voice_marked_failed(
    app_factory: Callable[..., AppServer], own_deployment: Callable[[], dict[str, str]], tmp_path: Path
) -> None:
    server = app_factory(**own_deployment(), STT_ENGINE="none", MAX_AUDIO_SECONDS="2").start()
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            gql = GraphQLClient(http, server.graphql_url)
            alice, bob = await register(gql), await register(gql)
            short = speak("Hi.", tmp_path, "ogg").read_bytes()
            audio = (await upload(http, gql.url, alice.token, short, "v.ogg", "audio/ogg"))["data"]["uploadAudio"]
            sent = (await gql.ok(SEND, {"input": {"receiverId": bob.id, "audioId": audio["id"]}},
                                 token=alice.token))["sendMessage"]
            message = await settled(gql, bob, sent["id"])
            assert message["transcriptionStatus"] == "FAILED"
            assert "transcription disabled" in server.log()
            played = await http.get(audio["url"])
            assert played.status_code == 200 and played.content == short
            long_clip = speak("Please call me back tomorrow morning about the meeting.", tmp_path, "ogg")
            too_long = await upload(http, gql.url, alice.token, long_clip.read_bytes(), "v.ogg", "audio/ogg")
            assert too_long["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "file"}
    finally:
        server.stop()


def test_deepgram_without_a_key_refuses_to_start(app_factory: Callable[..., AppServer]) -> None:
    server = app_factory(STT_ENGINE="deepgram")
    with pytest.raises(RuntimeError, match="DEEPGRAM_API_KEY is required"):
        server.start(timeout=30)

