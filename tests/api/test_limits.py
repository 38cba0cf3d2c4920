"""Abuse cases answered with the right code and no server error, on an in-process app with the
production defaults for rate limits (tightened so the tests stay short)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import httpx
import jwt
import pytest

from tests.conftest import TEST_JWT_SECRET
from tests.utils.graphql import LOGIN, ME, PASSWORD, SEND, GraphQLClient, register
from tests.utils.in_process import BASE_URL, InProcessApp, InProcessApps

ORIGIN = "https://chat.example.com"
LIMITED_SETTINGS = {
    "rate_limits": "on",
    "rate_limit_send_message": "5/60",
    "rate_limit_search": "3/60",
    "login_max_backoff_seconds": 2,
    "cors_origins": ORIGIN,
    "jwt_audience": "chattergram-test",
    "jwt_issuer": "https://auth.chat.example.com",
}


@pytest.fixture(scope="module")
async def limited(in_process_apps: InProcessApps) -> InProcessApp:
    return await in_process_apps.start(**LIMITED_SETTINGS)


@pytest.fixture
async def lgql(limited: InProcessApp) -> AsyncIterator[GraphQLClient]:
    async with limited.client() as client:
        yield client


def assert_clean(body: dict, code: str) -> dict:
    assert body["errors"], body
    error = body["errors"][0]
    assert error["extensions"]["code"] == code, body
    assert "Traceback" not in json.dumps(body)
    return error


async def test_deep_wide_and_huge_queries(lgql: GraphQLClient) -> None:
    user = await register(lgql)
    deep = "{ __schema { types { " + "fields { type { " * 25 + "name" + " } }" * 25 + " } } }"
    error = assert_clean(await lgql.raw(deep, token=user.token), "BAD_USER_INPUT")
    assert "depth" in error["message"].lower()
    aliases = "{ " + " ".join(f"a{i}: me {{ id }}" for i in range(1000)) + " }"
    assert_clean(await lgql.raw(aliases, token=user.token), "BAD_USER_INPUT")
    huge = "{ me { id } }" + " " * (1024 * 1024)
    response = await lgql.client.post(lgql.url, json={"query": huge}, headers={"Authorization": f"Bearer {user.token}"})
    assert response.status_code == 413
    assert_clean(response.json(), "PAYLOAD_TOO_LARGE")
    many_tokens = "{ me { " + "id " * 5000 + "} }"
    assert_clean(await lgql.raw(many_tokens, token=user.token), "BAD_USER_INPUT")


async def test_batches_are_refused(lgql: GraphQLClient) -> None:
    user = await register(lgql)
    batch = [{"query": ME} for _ in range(100)]
    response = await lgql.client.post(lgql.url, json=batch, headers={"Authorization": f"Bearer {user.token}"})
    assert response.status_code == 400
    assert "data" not in response.text or '"me"' not in response.text


async def test_no_field_suggestions_outside_dev_mode(lgql: GraphQLClient) -> None:
    user = await register(lgql)
    error = assert_clean(await lgql.raw("{ me { usernam } }", token=user.token), "BAD_USER_INPUT")
    assert "Did you mean" not in error["message"]


async def test_send_message_rate_limit(lgql: GraphQLClient) -> None:
    alice, bob = await register(lgql), await register(lgql)
    for i in range(5):
        await lgql.ok(SEND, {"input": {"receiverId": bob.id, "text": f"m{i}"}}, token=alice.token)
    error = assert_clean(await lgql.raw(SEND, {"input": {"receiverId": bob.id, "text": "one too many"}},
                                        token=alice.token), "RATE_LIMITED")
    assert 1 <= error["extensions"]["retryAfter"] <= 60
    history = "query H($p: ID!) { history(partnerId: $p) { edges { node { text } } } }"
    texts = [e["node"]["text"] for e in (await lgql.ok(history, {"p": bob.id}, token=alice.token))["history"]["edges"]]
    assert "one too many" not in texts and len(texts) == 5
    # Another user is not affected.
    await lgql.ok(SEND, {"input": {"receiverId": alice.id, "text": "bob is fine"}}, token=bob.token)


async def test_search_rate_limit(lgql: GraphQLClient) -> None:
    user = await register(lgql)
    query = "query S($q: String!) { search(query: $q) { total } }"
    for _ in range(3):
        await lgql.ok(query, {"q": "hello"}, token=user.token)
    assert_clean(await lgql.raw(query, {"q": "hello"}, token=user.token), "RATE_LIMITED")


async def test_mark_read_rate_limit(lgql: GraphQLClient) -> None:
    alice, bob = await register(lgql), await register(lgql)
    sent = (await lgql.ok(SEND, {"input": {"receiverId": bob.id, "text": "read me"}}, token=alice.token))
    mark_read = "mutation R($p: ID!, $u: ID!) { markRead(partnerId: $p, upTo: $u) { unreadCount } }"
    variables = {"p": alice.id, "u": sent["sendMessage"]["id"]}
    for _ in range(120):  # the default, RATE_LIMIT_MARK_READ=120/60: stale calls count too
        assert (await lgql.ok(mark_read, variables, token=bob.token))["markRead"]["unreadCount"] == 0
    error = assert_clean(await lgql.raw(mark_read, variables, token=bob.token), "RATE_LIMITED")
    assert 1 <= error["extensions"]["retryAfter"] <= 60
    # Another user is not affected.
    await lgql.ok(mark_read, {"p": bob.id, "u": sent["sendMessage"]["id"]}, token=alice.token)


async def test_login_brute_force_backs_off_then_the_right_password_works(lgql: GraphQLClient) -> None:
    user = await register(lgql)
    codes = []
    retry_after = 0
    for _ in range(20):
        body = await lgql.raw(LOGIN, {"input": {"login": user.username, "password": "wrong password"}})
        error = body["errors"][0]
        codes.append(error["extensions"]["code"])
        retry_after = error["extensions"].get("retryAfter", retry_after)
    assert codes[:5] == ["UNAUTHENTICATED"] * 5
    assert "RATE_LIMITED" in codes and retry_after >= 1
    # Even the right password waits for the back-off...
    blocked = await lgql.raw(LOGIN, {"input": {"login": user.username, "password": PASSWORD}})
    assert blocked["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    await asyncio.sleep(blocked["errors"][0]["extensions"]["retryAfter"] + 0.2)
    # ... and then works, and resets the failure count.
    ok = await lgql.ok(LOGIN, {"input": {"login": user.username, "password": PASSWORD}})
    assert ok["login"]["user"]["id"] == user.id


async def test_registration_is_limited_per_ip(in_process_apps: InProcessApps) -> None:
    server = await in_process_apps.start(rate_limits="on", rate_limit_register="3/3600")
    async with server.client() as gql:
        codes = []
        for _ in range(5):
            body = await gql.raw("mutation R($i: RegisterInput!) { register(input: $i) { token } }",
                                 {"i": {"username": f"r{time.time_ns()}", "email": f"r{time.time_ns()}@x.io",
                                        "password": PASSWORD}})
            codes.append(body["errors"][0]["extensions"]["code"] if body.get("errors") else "OK")
    assert codes == ["OK", "OK", "OK", "RATE_LIMITED", "RATE_LIMITED"]


async def test_tokens_need_the_configured_audience_and_issuer(lgql: GraphQLClient) -> None:
    user = await register(lgql)
    claims = jwt.decode(user.token, TEST_JWT_SECRET, algorithms=["HS256"], audience="chattergram-test")
    assert claims["iss"] == "https://auth.chat.example.com"
    now = int(time.time())
    plain = jwt.encode({"sub": user.id, "iat": now, "exp": now + 60}, TEST_JWT_SECRET, algorithm="HS256")
    assert (await lgql.error(ME, token=plain))["extensions"]["code"] == "UNAUTHENTICATED"
    wrong = jwt.encode({"sub": user.id, "iat": now, "exp": now + 60, "aud": "other", "iss": claims["iss"]},
                       TEST_JWT_SECRET, algorithm="HS256")
    assert (await lgql.error(ME, token=wrong))["extensions"]["code"] == "UNAUTHENTICATED"


async def test_security_headers_and_cors_allow_list(lgql: GraphQLClient) -> None:
    response = await lgql.client.post(lgql.url, json={"query": "{ __typename }"})
    for name, value in [("x-content-type-options", "nosniff"), ("x-frame-options", "DENY"),
                        ("referrer-policy", "no-referrer")]:
        assert response.headers[name] == value
    assert "default-src 'none'" in response.headers["content-security-policy"]
    allowed = await lgql.client.options(lgql.url, headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"})
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    other = await lgql.client.options(lgql.url, headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in other.headers


async def test_cors_is_off_by_default(in_process_app: InProcessApp) -> None:
    async with in_process_app.client() as gql:
        response = await gql.client.post(gql.url, json={"query": "{ __typename }"}, headers={"Origin": ORIGIN})
    assert "access-control-allow-origin" not in response.headers


async def test_login_attempts_are_capped_per_ip_across_names(in_process_apps: InProcessApps) -> None:
    # The default cap (RATE_LIMIT_LOGIN=30/60): one request with 30 aliased logins, each for a
    # different name, runs 30 password checks; a 31st login from that IP is refused before any.
    server = await in_process_apps.start(rate_limits="on", rate_limit_register="40/3600")
    async with server.client() as gql:
        users = [await register(gql) for _ in range(30)]
        fields = " ".join(
            f'a{i}: login(input: {{login: "{user.username}", password: "{PASSWORD}"}}) {{ user {{ id }} }}'
            for i, user in enumerate(users)
        )
        data = await gql.ok(f"mutation {{ {fields} }}")
        assert [data[f"a{i}"]["user"]["id"] for i in range(30)] == [user.id for user in users]
        error = assert_clean(await gql.raw(LOGIN, {"input": {"login": "nobody_else", "password": "wrong password"}}),
                             "RATE_LIMITED")
        assert 1 <= error["extensions"]["retryAfter"] <= 60
    # Another client IP has an allowance of its own.
    transport = httpx.ASGITransport(app=server.app, client=("192.0.2.7", 4321))
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, timeout=30) as http:
        other = GraphQLClient(http, f"{BASE_URL}/graphql")
        await other.ok(LOGIN, {"input": {"login": users[0].username, "password": PASSWORD}})
