"""Which address the per-IP limits see: the socket peer, or, only when the peer is one of
TRUSTED_PROXIES, the right-most X-Forwarded-For hop that is not itself a trusted proxy.

In-process apps (httpx's ASGI transport: the peer is always 127.0.0.1), and served apps
(uvicorn: the peer is the test's loopback connection, 127.0.0.1 too)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from api.app_server import AppServer
from tests.utils.audio import speak, upload
from tests.utils.graphql import GraphQLClient, register, unique_name
from tests.utils.in_process import InProcessApps

REGISTER_ONLY = "mutation R($i: RegisterInput!) { register(input: $i) { token } }"
LIMITED = {"rate_limits": "on", "rate_limit_register": "2/3600"}


async def register_code(http: httpx.AsyncClient, url: str, forwarded_for: str | None = None) -> str:
    """"OK" or the error code of one sign-up, sent with `forwarded_for` as X-Forwarded-For."""
    name = unique_name("ip")
    variables = {"i": {"username": name, "email": f"{name}@example.com", "password": "correct horse battery"}}
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for is not None else {}
    body = (await http.post(url, json={"query": REGISTER_ONLY, "variables": variables}, headers=headers)).json()
    return str(body["errors"][0]["extensions"]["code"]) if body.get("errors") else "OK"


async def test_spoofed_forwarded_for_is_ignored_without_trusted_proxies(in_process_apps: InProcessApps) -> None:
    server = await in_process_apps.start(**LIMITED)  # TRUSTED_PROXIES empty: the default
    async with server.client() as gql:
        codes = [await register_code(gql.client, gql.url, f"203.0.113.{i}") for i in range(4)]
    assert codes == ["OK", "OK", "RATE_LIMITED", "RATE_LIMITED"]


async def test_clients_behind_a_trusted_proxy_have_limits_of_their_own(in_process_apps: InProcessApps) -> None:
    server = await in_process_apps.start(**LIMITED, trusted_proxies="127.0.0.1, 10.0.0.0/8")
    async with server.client() as gql:
        # A client-written left-most hop is not believed; our proxy chain (10.x) is skipped.
        first = [await register_code(gql.client, gql.url, f"198.51.100.{i}, 203.0.113.1, 10.1.2.3")
                 for i in range(3)]
        second = [await register_code(gql.client, gql.url, "203.0.113.2") for _ in range(3)]
        direct = await register_code(gql.client, gql.url)  # no header: the peer itself
    assert first == ["OK", "OK", "RATE_LIMITED"]
    assert second == ["OK", "OK", "RATE_LIMITED"]
    assert direct == "OK"


async def test_served_app_ignores_forwarded_for_from_an_untrusted_peer(
    app_factory: Callable[..., AppServer], own_deployment: Callable[[], dict[str, str]], http: httpx.AsyncClient
) -> None:
    # uvicorn believes X-Forwarded-For from 127.0.0.1 by default; TRUSTED_PROXIES alone must decide.
    server = app_factory(**own_deployment(), RATE_LIMITS="on", RATE_LIMIT_REGISTER="2/3600").start()
    codes = [await register_code(http, server.graphql_url, f"203.0.113.{i}") for i in range(4)]
    assert codes == ["OK", "OK", "RATE_LIMITED", "RATE_LIMITED"]


async def upload_url(server: AppServer, clip: bytes, headers: dict[str, str]) -> str:
    """The uploader's signed URL for a fresh upload, asked for with `headers`."""
    async with httpx.AsyncClient(timeout=30) as http:
        alice = await register(GraphQLClient(http, server.graphql_url))
        result = await upload(http, server.graphql_url, alice.token, clip, "v.ogg", "audio/ogg", headers)
    return str(result["data"]["uploadAudio"]["url"])


async def test_media_urls_follow_the_forwarded_scheme_of_a_trusted_proxy_only(
    app: AppServer, app_factory: Callable[..., AppServer], own_deployment: Callable[[], dict[str, str]],
    tmp_path: Path,
) -> None:
    clip = speak("Behind a proxy.", tmp_path, "ogg").read_bytes()
    trusted = app_factory(**own_deployment(), STT_ENGINE="none", TRUSTED_PROXIES="127.0.0.1").start()
    assert (await upload_url(trusted, clip, {"X-Forwarded-Proto": "https"})).startswith("https://")
    assert (await upload_url(trusted, clip, {"X-Forwarded-Proto": "gopher"})).startswith("http://")
    assert (await upload_url(trusted, clip, {})).startswith("http://")
    # The shared app trusts no proxy (the default): the header changes nothing.
    assert (await upload_url(app, clip, {"X-Forwarded-Proto": "https"})).startswith("http://")
