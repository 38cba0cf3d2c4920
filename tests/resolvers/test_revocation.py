"""Token revocation through the public API (in-process app): logout, logoutEverywhere,
changePassword. The WebSocket and multi-instance side is in tests/api/test_revocation.py."""

from __future__ import annotations

from typing import Any

from tests.utils.graphql import LOGIN, ME, PASSWORD, Account, GraphQLClient, register, unique_name
from tests.utils.in_process import InProcessApps

LOGOUT = "mutation { logout }"
LOGOUT_EVERYWHERE = "mutation { logoutEverywhere }"
CHANGE_PASSWORD = """
mutation Change($current: String!, $new: String!) {
  changePassword(currentPassword: $current, newPassword: $new) { token expiresAt user { id username } }
}"""
NEW_PASSWORD = "a new horse battery"


async def _login(gql: GraphQLClient, account: Account, password: str = PASSWORD) -> str:
    data = await gql.ok(LOGIN, {"input": {"login": account.username, "password": password}})
    token: str = data["login"]["token"]
    return token


async def _code(gql: GraphQLClient, query: str, variables: dict[str, Any] | None = None,
                token: str | None = None) -> str:
    code: str = (await gql.error(query, variables, token=token))["extensions"]["code"]
    return code


async def test_logout_revokes_only_the_token_it_was_sent_with(gql: GraphQLClient) -> None:
    alice = await register(gql, unique_name("alice"))
    second = await _login(gql, alice)
    assert (await gql.ok(ME, token=second))["me"]["id"] == alice.id

    assert await gql.ok(LOGOUT, token=second) == {"logout": True}

    assert await _code(gql, ME, token=second) == "UNAUTHENTICATED"
    assert await _code(gql, LOGOUT, token=second) == "UNAUTHENTICATED"  # no second logout with it
    assert (await gql.ok(ME, token=alice.token))["me"]["id"] == alice.id  # the other token works
    fresh = await _login(gql, alice)  # and logging in again works
    assert (await gql.ok(ME, token=fresh))["me"]["id"] == alice.id


async def test_logout_needs_a_token(gql: GraphQLClient) -> None:
    assert await _code(gql, LOGOUT) == "UNAUTHENTICATED"
    assert await _code(gql, LOGOUT_EVERYWHERE) == "UNAUTHENTICATED"


async def test_logout_everywhere_revokes_every_token_of_the_viewer_only(gql: GraphQLClient) -> None:
    alice = await register(gql, unique_name("alice"))
    bob = await register(gql, unique_name("bob"))
    tokens = [alice.token, await _login(gql, alice), await _login(gql, alice)]

    assert await gql.ok(LOGOUT_EVERYWHERE, token=tokens[1]) == {"logoutEverywhere": True}

    for token in tokens:
        assert await _code(gql, ME, token=token) == "UNAUTHENTICATED"
    assert (await gql.ok(ME, token=bob.token))["me"]["id"] == bob.id  # other users untouched
    fresh = await _login(gql, alice)  # a login right after (the same second) works
    assert (await gql.ok(ME, token=fresh))["me"]["id"] == alice.id
    assert await gql.ok(LOGOUT_EVERYWHERE, token=fresh) == {"logoutEverywhere": True}
    assert await _code(gql, ME, token=fresh) == "UNAUTHENTICATED"


async def test_change_password_with_a_wrong_current_password_is_unauthenticated_like_login(
    gql: GraphQLClient,
) -> None:
    alice = await register(gql, unique_name("alice"))
    error = await gql.error(CHANGE_PASSWORD, {"current": "not the password", "new": NEW_PASSWORD}, token=alice.token)
    login_error = await gql.error(LOGIN, {"input": {"login": alice.username, "password": "not the password"}})
    assert error["extensions"]["code"] == login_error["extensions"]["code"] == "UNAUTHENTICATED"
    assert error["message"] == login_error["message"]
    assert (await gql.ok(ME, token=alice.token))["me"]["id"] == alice.id  # nothing changed
    await _login(gql, alice)  # the old password still logs in


async def test_change_password_refuses_a_weak_new_password(gql: GraphQLClient) -> None:
    alice = await register(gql, unique_name("alice"))
    for weak in ("short", "x" * 129):
        error = await gql.error(CHANGE_PASSWORD, {"current": PASSWORD, "new": weak}, token=alice.token)
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert error["extensions"]["field"] == "password"
    assert (await gql.ok(ME, token=alice.token))["me"]["id"] == alice.id
    await _login(gql, alice)


async def test_change_password_returns_a_working_token_and_revokes_every_other(gql: GraphQLClient) -> None:
    alice = await register(gql, unique_name("alice"))
    other = await _login(gql, alice)

    payload = (await gql.ok(CHANGE_PASSWORD, {"current": PASSWORD, "new": NEW_PASSWORD},
                            token=alice.token))["changePassword"]

    assert payload["user"] == {"id": alice.id, "username": alice.username}
    assert (await gql.ok(ME, token=payload["token"]))["me"]["id"] == alice.id
    for old in (alice.token, other):
        assert await _code(gql, ME, token=old) == "UNAUTHENTICATED"
    assert await _code(gql, LOGIN, {"input": {"login": alice.username, "password": PASSWORD}}) == "UNAUTHENTICATED"
    relogged = await _login(gql, alice, NEW_PASSWORD)
    assert (await gql.ok(ME, token=relogged))["me"]["id"] == alice.id
    assert (await gql.ok(ME, token=payload["token"]))["me"]["id"] == alice.id  # still works


async def test_a_revoked_token_cannot_change_the_password(gql: GraphQLClient) -> None:
    alice = await register(gql, unique_name("alice"))
    await gql.ok(LOGOUT, token=alice.token)
    assert await _code(gql, CHANGE_PASSWORD, {"current": PASSWORD, "new": NEW_PASSWORD},
                       token=alice.token) == "UNAUTHENTICATED"
    await _login(gql, alice)  # the password did not change


async def test_change_password_attempts_are_limited_like_logins(in_process_apps: InProcessApps) -> None:
    app = await in_process_apps.start(rate_limits="on", login_free_failures=2, rate_limit_login="6/60")
    async with app.client() as gql:
        alice = await register(gql, unique_name("alice"))
        wrong = {"current": "not the password", "new": NEW_PASSWORD}
        for _ in range(2):  # the free failures
            assert await _code(gql, CHANGE_PASSWORD, wrong, token=alice.token) == "UNAUTHENTICATED"
        # Then the back-off, as for login: even the right password waits.
        error = await gql.error(CHANGE_PASSWORD, {"current": PASSWORD, "new": NEW_PASSWORD}, token=alice.token)
        assert error["extensions"]["code"] == "RATE_LIMITED" and error["extensions"]["retryAfter"] >= 1
        # And the attempts count against the per-IP login limit (6 a minute): 3 so far.
        codes = [await _code(gql, LOGIN, {"input": {"login": unique_name(), "password": "x" * 8}}) for _ in range(4)]
        assert codes == ["UNAUTHENTICATED"] * 3 + ["RATE_LIMITED"]
