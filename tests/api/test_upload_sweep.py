"""Uploads never sent are deleted after UPLOAD_TTL_SECONDS, and a claim left by a send that
crashed before its message was written is given back; on an in-process app with tiny periods."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from storage.audio import AudioStore
from storage.ids import new_id
from tests.utils.audio import speak, upload
from tests.utils.graphql import SEND, GraphQLClient, register
from tests.utils.in_process import InProcessApp, InProcessApps

VOICE_URL = "query M($id: ID!) { message(id: $id) { audio { id url } } }"
SWEEP_SETTINGS = {"upload_ttl_seconds": 6, "upload_claim_grace_seconds": 1, "upload_sweep_seconds": 0.2}


@pytest.fixture(scope="module")
async def swept(in_process_apps: InProcessApps) -> InProcessApp:
    return await in_process_apps.start(**SWEEP_SETTINGS)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return speak("Nobody will ever hear this.", tmp_path_factory.mktemp("sweep"), "ogg").read_bytes()


async def _upload(gql: GraphQLClient, token: str, clip: bytes) -> dict[str, Any]:
    return (await upload(gql.client, gql.url, token, clip, "v.ogg", "audio/ogg"))["data"]["uploadAudio"]


async def _until_status(http: httpx.AsyncClient, url: str, status: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while (got := (await http.get(url)).status_code) != status:
        assert time.monotonic() < deadline, f"{url} still answers {got}"
        await asyncio.sleep(0.2)


async def test_unsent_uploads_expire_and_sent_ones_stay(swept: InProcessApp, clip: bytes) -> None:
    async with swept.client() as gql:
        alice, bob = await register(gql), await register(gql)
        unsent = await _upload(gql, alice.token, clip)
        kept = await _upload(gql, alice.token, clip)
        message = (await gql.ok(SEND, {"input": {"receiverId": bob.id, "audioId": kept["id"]}},
                                token=alice.token))["sendMessage"]
        sent_url = (await gql.ok(VOICE_URL, {"id": message["id"]}, token=bob.token))["message"]["audio"]["url"]
        assert (await gql.client.get(unsent["url"])).status_code == 200
        await _until_status(gql.client, unsent["url"], 404)
        played = await gql.client.get(sent_url)
        assert played.status_code == 200 and played.content == clip
        # Its claim is kept (its message exists), so it still cannot be sent twice.
        twice = await gql.error(SEND, {"input": {"receiverId": bob.id, "audioId": kept["id"]}}, token=alice.token)
        assert twice["extensions"] == {"code": "CONFLICT", "field": "audioId"}


async def test_a_crashed_sends_claim_is_given_back(swept: InProcessApp, clip: bytes) -> None:
    async with swept.client() as gql:
        alice, bob = await register(gql), await register(gql)
        audio = await _upload(gql, alice.token, clip)
        mongo: AsyncMongoClient[Any] = AsyncMongoClient(swept.mongodb_url)
        try:  # what a send that died between its claim and its message leaves behind
            assert await AudioStore(mongo[swept.database]).claim(
                audio_id=audio["id"], owner_id=alice.id, message_id=new_id()) is not None
        finally:
            await mongo.close()
        send = {"input": {"receiverId": bob.id, "audioId": audio["id"]}}
        conflict = await gql.error(SEND, send, token=alice.token)
        assert conflict["extensions"] == {"code": "CONFLICT", "field": "audioId"}
        deadline = time.monotonic() + 10
        while "errors" in (body := await gql.raw(SEND, send, token=alice.token)):
            assert body["errors"][0]["extensions"]["code"] == "CONFLICT", body
            assert time.monotonic() < deadline, "the crashed send's claim was never released"
            await asyncio.sleep(0.2)
        message = body["data"]["sendMessage"]
        url = (await gql.ok(VOICE_URL, {"id": message["id"]}, token=bob.token))["message"]["audio"]["url"]
        assert (await gql.client.get(url)).status_code == 200
