"""Deleting voice messages: the recording leaves GridFS (/media answers 404), the transcript
leaves Redis, MongoDB and search, and a transcription still running never brings it back.
The engine is a local server speaking Deepgram's protocol, held until the test lets it answer."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import MongoClient
from starlette.requests import Request
from starlette.responses import JSONResponse

from api.app_server import AppServer
from tests.api.test_transcription_engines import deepgram_env, send_voice, settled
from tests.utils.fake_deepgram import FakeDeepgram, Outcome, listen_response
from tests.utils.graphql import GraphQLClient, register

SPOKEN = "Please call me back tomorrow morning."
DELETE = "mutation D($id: ID!) { deleteMessage(id: $id) { id kind text deletedAt audio { id } transcriptionStatus } }"
EDIT = "mutation E($id: ID!, $text: String!) { editMessage(id: $id, text: $text) { id } }"
MESSAGE = """query M($id: ID!) { message(id: $id) { id text deletedAt audio { url } transcriptionStatus
  transcript { text } } }"""
SEARCH = "query S($q: String!) { search(query: $q) { hits { ... on MessageHit { message { id } } } } }"


@dataclass
class HeldDeepgram(FakeDeepgram):
    """Answers only once `release` is set; `arrived` is set when a request came in."""

    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    async def _listen(self, request: Request) -> JSONResponse:
        self.arrived.set()
        await asyncio.to_thread(self.release.wait, 30)
        return await super()._listen(request)


@pytest.fixture(scope="module")
async def deepgram() -> AsyncIterator[HeldDeepgram]:
    server = HeldDeepgram()
    with server:
        server.release.set()
        yield server


@pytest.fixture(scope="module")
def voice_app(app_factory: Callable[..., AppServer], own_deployment: Callable[[], dict[str, str]],
              deepgram: HeldDeepgram) -> tuple[AppServer, str]:
    deployment = own_deployment()
    return app_factory(**deployment, **deepgram_env(deepgram)).start(), deployment["mongodb_url"]


def _archived(mongodb_url: str, message_id: str) -> dict[str, Any] | None:
    client: MongoClient[dict[str, Any]] = MongoClient(mongodb_url)
    try:
        return client.get_default_database()["messages"].find_one({"_id": message_id})
    finally:
        client.close()


async def _archived_when(mongodb_url: str, message_id: str, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        doc = await asyncio.to_thread(_archived, mongodb_url, message_id)
        if (doc is not None and done(doc)) or time.monotonic() > deadline:
            assert doc is not None
            return doc
        await asyncio.sleep(0.2)


async def _found(gql: GraphQLClient, token: str, query: str) -> list[str]:
    hits = (await gql.ok(SEARCH, {"q": query}, token=token))["search"]["hits"]
    return [h["message"]["id"] for h in hits if h]


async def test_deleting_a_transcribed_voice_message_removes_audio_and_transcript_everywhere(
    voice_app: tuple[AppServer, str], deepgram: HeldDeepgram, tmp_path: Path
) -> None:
    app, mongodb_url = voice_app
    deepgram.answer(Outcome(200, listen_response([(SPOKEN, 0.97)])))
    async with httpx.AsyncClient(timeout=30) as http:
        gql = GraphQLClient(http, app.graphql_url)
        alice, bob = await register(gql), await register(gql)
        sent = await send_voice(gql, alice, bob, tmp_path)
        assert (await settled(gql, bob, sent["id"]))["transcriptionStatus"] == "DONE"
        assert await _found(gql, bob.token, "tomorrow") == [sent["id"]]
        url = (await gql.ok(MESSAGE, {"id": sent["id"]}, token=bob.token))["message"]["audio"]["url"]
        assert (await http.get(url)).status_code == 200
        await _archived_when(mongodb_url, sent["id"], lambda d: d.get("transcription_status") == "DONE")
        error = await gql.error(EDIT, {"id": sent["id"], "text": "typed over"}, token=alice.token)
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "id"}  # voice is not edited

        tombstone = (await gql.ok(DELETE, {"id": sent["id"]}, token=alice.token))["deleteMessage"]
        assert tombstone == {"id": sent["id"], "kind": "VOICE", "text": "", "deletedAt": tombstone["deletedAt"],
                             "audio": None, "transcriptionStatus": None}
        assert (await http.get(url)).status_code == 404
        assert await _found(gql, bob.token, "tomorrow") == []
        seen = (await gql.ok(MESSAGE, {"id": sent["id"]}, token=bob.token))["message"]
        assert seen["audio"] is None and seen["transcript"] is None and seen["text"] == ""
        doc = await _archived_when(mongodb_url, sent["id"], lambda d: d.get("deleted_at_ms") is not None)
        assert (doc["text"], doc["audio"], doc["transcript"], doc["transcription_status"]) == ("", None, None, None)


async def test_a_voice_message_deleted_while_transcribing_stays_deleted(
    voice_app: tuple[AppServer, str], deepgram: HeldDeepgram, tmp_path: Path
) -> None:
    app, mongodb_url = voice_app
    transcribed = Outcome(200, listen_response([(SPOKEN, 0.97)]))
    deepgram.answer(transcribed, then=transcribed)
    deepgram.arrived.clear()
    deepgram.release.clear()  # the engine holds its answer: the job is running, the message PENDING
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            gql = GraphQLClient(http, app.graphql_url)
            alice, bob = await register(gql), await register(gql)
            sent = await send_voice(gql, alice, bob, tmp_path)
            assert await asyncio.to_thread(deepgram.arrived.wait, 30)
            pending = (await gql.ok(MESSAGE, {"id": sent["id"]}, token=bob.token))["message"]
            assert pending["transcriptionStatus"] == "PENDING"
            tombstone = (await gql.ok(DELETE, {"id": sent["id"]}, token=alice.token))["deleteMessage"]
            deepgram.release.set()  # the transcript arrives for a deleted message
            # One worker takes jobs one at a time: once a later message is transcribed, so was this one.
            later = await send_voice(gql, alice, bob, tmp_path)
            assert (await settled(gql, bob, later["id"]))["transcriptionStatus"] == "DONE"
            after = (await gql.ok(MESSAGE, {"id": sent["id"]}, token=bob.token))["message"]
            assert after == {"id": sent["id"], "text": "", "deletedAt": tombstone["deletedAt"], "audio": None,
                             "transcriptionStatus": None, "transcript": None}
            assert await _found(gql, bob.token, "tomorrow") == [later["id"]]
            doc = await _archived_when(mongodb_url, sent["id"], lambda d: d.get("deleted_at_ms") is not None)
            assert (doc["text"], doc["transcript"], doc["transcription_status"]) == ("", None, None)
    finally:
        deepgram.release.set()
