"""A served app (`chattergram serve`) behind a trusted proxy: uvicorn's proxy-header handling
believes exactly TRUSTED_PROXIES; media URLs use the scheme and host the client used; every
request has an id (the client's X-Request-ID when sane) on its response and on every log
line it causes; refusals are logged one line each, naming the client behind the proxy.

The proxy is 127.0.0.1 (TRUSTED_PROXIES); connections from 127.0.0.2 (also loopback) are an
untrusted peer talking to the same server."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from api.app_server import AppServer
from api.cli import proxy_options
from api.settings import Settings
from tests.utils.audio import speak, upload
from tests.utils.graphql import GraphQLClient, register

CLIENT = "203.0.113.7"
PROXY_HEADERS = {"X-Forwarded-For": CLIENT, "X-Forwarded-Proto": "https", "Host": "chat.example.com"}
GENERATED_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture(scope="module")
def proxied(app_factory: Callable[..., AppServer], own_deployment: Callable[[], dict[str, str]]) -> AppServer:
    return app_factory(**own_deployment(), STT_ENGINE="none", TRUSTED_PROXIES="127.0.0.1",
                       HTTP_BODY_TIMEOUT_SECONDS="1", HTTP_HEADER_TIMEOUT_SECONDS="1").start()


@pytest.fixture
async def untrusted() -> AsyncIterator[httpx.AsyncClient]:
    """A client whose connections come from 127.0.0.2: not a trusted proxy."""
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with httpx.AsyncClient(transport=transport, timeout=30) as client:
        yield client


def log_lines(server: AppServer, since: int = 0) -> list[dict[str, Any]]:
    """The server's JSON log lines after the first `since` characters."""
    lines = []
    for line in server.log()[since:].splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


async def wait_for_lines(server: AppServer, since: int, match: Callable[[dict[str, Any]], bool],
                         count: int = 1) -> list[dict[str, Any]]:
    for _ in range(50):
        found = [line for line in log_lines(server, since) if match(line)]
        if len(found) >= count:
            await asyncio.sleep(0.2)  # anything more that belongs to it
            return [line for line in log_lines(server, since) if match(line)]
        await asyncio.sleep(0.1)
    raise AssertionError(f"fewer than {count} matching log lines:\n{server.log()[since:][-3000:]}")


def test_trusted_proxies_feed_uvicorns_forwarded_allow_ips() -> None:
    def settings(trusted: str) -> Settings:
        return Settings(jwt_secret="s" * 32, trusted_proxies=trusted)

    assert proxy_options(settings("")) == (False, None)
    assert proxy_options(settings("10.1.2.3/16, 192.0.2.1")) == (True, "10.1.0.0/16,192.0.2.1/32")


async def test_media_urls_use_the_scheme_and_host_the_client_used(
    proxied: AppServer, http: httpx.AsyncClient, untrusted: httpx.AsyncClient, tmp_path: Path
) -> None:
    clip = speak("Behind a proxy.", tmp_path, "ogg").read_bytes()

    async def media_url(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
        alice = await register(GraphQLClient(client, proxied.graphql_url))
        result = await upload(client, proxied.graphql_url, alice.token, clip, "v.ogg", "audio/ogg", headers)
        return str(result["data"]["uploadAudio"]["url"])

    via_proxy = await media_url(http, PROXY_HEADERS)
    assert via_proxy.startswith("https://chat.example.com/media/")
    assert (await http.get(proxied.url + via_proxy.removeprefix("https://chat.example.com"))).status_code == 200
    # The same headers from a peer that is not a proxy: its own scheme, the host it asked for.
    assert (await media_url(untrusted, PROXY_HEADERS)).startswith("http://chat.example.com/media/")
    assert (await media_url(http, {})).startswith(f"http://127.0.0.1:{proxied.port}/media/")


async def test_request_id_is_echoed_and_on_every_log_line_of_its_request(
    proxied: AppServer, http: httpx.AsyncClient
) -> None:
    since = len(proxied.log())
    ids = [f"probe-{uuid.uuid4().hex[:12]}.{i}" for i in range(8)]

    async def probe(i: int) -> httpx.Response:
        return await http.post(proxied.graphql_url, json={"query": f"query RidProbe{i} {{ me {{ id }} }}"},
                               headers={"X-Request-ID": ids[i], **PROXY_HEADERS})

    responses = await asyncio.gather(*(probe(i) for i in range(len(ids))))  # concurrently: no cross-talk
    assert [r.headers["x-request-id"] for r in responses] == ids
    lines = await wait_for_lines(proxied, since, lambda line: str(line.get("operation", "")).startswith("RidProbe"),
                                 count=len(ids))
    assert len(lines) == len(ids)
    assert {line["operation"]: line.get("request_id") for line in lines} == {
        f"RidProbe{i}": ids[i] for i in range(len(ids))}
    # Nothing else was logged under these ids (e.g. twice for one request).
    assert sum(line.get("request_id") in ids for line in log_lines(proxied, since)) == len(ids)


async def test_a_websocket_connection_has_one_id_on_all_its_operations(
    proxied: AppServer, http: httpx.AsyncClient
) -> None:
    alice = await register(GraphQLClient(http, proxied.graphql_url))
    since = len(proxied.log())
    rid = f"ws-{uuid.uuid4().hex}"
    async with websockets.connect(proxied.ws_url, subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]  # str for its Subprotocol NewType
                                  additional_headers={"X-Request-ID": rid}) as ws:
        assert ws.response is not None and ws.response.headers["x-request-id"] == rid
        await ws.send(json.dumps({"type": "connection_init", "payload": {"token": alice.token}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        for n in range(2):
            await ws.send(json.dumps({"type": "subscribe", "id": str(n),
                                      "payload": {"query": f"query WsProbe{n} {{ me {{ id }} }}"}}))
            assert json.loads(await ws.recv())["type"] == "next"
            assert json.loads(await ws.recv())["type"] == "complete"
    lines = await wait_for_lines(proxied, since, lambda line: str(line.get("operation", "")).startswith("WsProbe"),
                                 count=2)
    assert [line.get("request_id") for line in lines] == [rid, rid]


@pytest.mark.parametrize("given", ["", "has space", "x" * 65, "semi;colon", "émoji"])
async def test_an_unusable_request_id_is_replaced(proxied: AppServer, given: str) -> None:
    since = len(proxied.log())
    name = f"BadRid{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(proxied.graphql_url, json={"query": f"query {name} {{ me {{ id }} }}"},
                                   headers=[(b"X-Request-ID", given.encode())])  # raw bytes: UTF-8 too
    rid = response.headers["x-request-id"]
    assert GENERATED_ID.fullmatch(rid) and rid != given
    [line] = await wait_for_lines(proxied, since, lambda line: line.get("operation") == name)
    assert line["request_id"] == rid


async def test_refusals_are_logged_once_each_naming_the_client_behind_the_proxy(proxied: AppServer) -> None:
    since = len(proxied.log())
    refused: dict[str, int] = {}
    async with httpx.AsyncClient(timeout=30) as http:
        async def send(rid: str, method: str, **kwargs: Any) -> None:
            response = await http.request(method, proxied.graphql_url,
                                          headers={"X-Request-ID": rid, **PROXY_HEADERS}, **kwargs)
            refused[rid] = response.status_code

        await send("refuse-405-put", "PUT", content=b"{}")
        mutation = 'mutation { login(input: {login: "a", password: "b"}) { token } }'
        await send("refuse-405-get-mutation", "GET", params={"query": mutation})
        await send("refuse-413", "POST", content=b"{" + b" " * (300 * 1024) + b"}")  # over 256 KiB
    # A body that stalls (HTTP_BODY_TIMEOUT_SECONDS=1 here): 408.
    reader, writer = await asyncio.open_connection("127.0.0.1", proxied.port)
    writer.write(b"POST /graphql HTTP/1.1\r\nHost: chat.example.com\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 100\r\nX-Request-ID: refuse-408\r\n"
                 + f"X-Forwarded-For: {CLIENT}\r\n\r\n".encode() + b'{"query":')
    await writer.drain()
    head = await asyncio.wait_for(reader.readline(), 10)
    refused["refuse-408"] = int(head.split()[1])
    writer.close()
    assert refused == {"refuse-405-put": 405, "refuse-405-get-mutation": 405, "refuse-413": 413, "refuse-408": 408}

    lines = await wait_for_lines(proxied, since, lambda line: line.get("msg") == "request refused", count=4)
    assert sorted((line["request_id"], line["status"]) for line in lines) == sorted(refused.items())
    assert {line["client"] for line in lines} == {CLIENT}
    assert all(line["path"] == "/graphql" and line["reason"] for line in lines)


async def test_a_request_head_that_stalls_is_logged_an_idle_connection_is_not(proxied: AppServer) -> None:
    since = len(proxied.log())
    _, idle = await asyncio.open_connection("127.0.0.1", proxied.port)  # e.g. a browser's preconnect
    reader, writer = await asyncio.open_connection("127.0.0.1", proxied.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: chat.example.com\r\n")  # and never the blank line
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed after HTTP_HEADER_TIMEOUT_SECONDS=1
    await asyncio.sleep(0.5)
    idle.close()
    writer.close()
    [line] = await wait_for_lines(proxied, since, lambda line: line.get("msg") == "request refused")
    assert line["status"] == 408 and line["client"] == "127.0.0.1" and "head" in line["reason"]
