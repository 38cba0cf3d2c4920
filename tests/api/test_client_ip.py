"""Which address the per-IP limits see: the socket peer, or, only when the peer is one of
TRUSTED_PROXIES, the right-most X-Forwarded-For hop that is not itself a trusted proxy.

In-process apps (httpx's ASGI transport: the peer is always 127.0.0.1)."""

from __future__ import annotations

import httpx

from tests.utils.graphql import unique_name
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
