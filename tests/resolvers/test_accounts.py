"""Accounts end to end: register, login, me, users — over HTTP against the app (in-process)."""

from __future__ import annotations

import asyncio

import pymongo
import pytest

from tests.utils.graphql import LOGIN, ME, PASSWORD, GraphQLClient, register, unique_name
from tests.utils.in_process import InProcessApp

USERS = """
query Users($first: Int, $after: String, $onlineOnly: Boolean) {
  users(first: $first, after: $after, onlineOnly: $onlineOnly) {
    edges { cursor node { id username online } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""


async def test_register_login_me_and_list(gql: GraphQLClient) -> None:
    alice = await register(gql, unique_name("alice"))
    bob = await register(gql, unique_name("bob"))

    by_name = (await gql.ok(LOGIN, {"input": {"login": alice.username, "password": PASSWORD}}))["login"]
    by_email = (await gql.ok(LOGIN, {"input": {"login": alice.email.upper(), "password": PASSWORD}}))["login"]
    assert by_name["user"]["id"] == by_email["user"]["id"] == alice.id

    me = (await gql.ok(ME, token=by_email["token"]))["me"]
    assert me == {
        "id": alice.id, "username": alice.username, "online": False,
        "createdAt": me["createdAt"], "lastSeenAt": None,
    }
    assert me["createdAt"].endswith("Z")

    seen: list[str] = []
    after = None
    while True:
        page = (await gql.ok(USERS, {"first": 2, "after": after}, token=bob.token))["users"]
        assert len(page["edges"]) <= 2
        assert page["pageInfo"]["hasPreviousPage"] == (after is not None)
        seen += [edge["node"]["id"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        after = page["pageInfo"]["endCursor"]
    assert seen.count(alice.id) == 1 and seen.count(bob.id) == 1
    assert seen == sorted(seen), "users come in sign-up order"
    assert seen.index(alice.id) < seen.index(bob.id)


async def test_users_requires_token_and_validates_arguments(gql: GraphQLClient) -> None:
    user = await register(gql)
    assert (await gql.error(USERS, {"first": 5}))["extensions"]["code"] == "UNAUTHENTICATED"
    for variables, field in [({"first": -1}, "first"), ({"first": 201}, "first"),
                             ({"after": "not a cursor!"}, "after"), ({"after": "dXNlcjp4"}, "after")]:
        error = await gql.error(USERS, variables, token=user.token)
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": field}, variables


async def test_online_only_lists_nobody_without_connections(gql: GraphQLClient) -> None:
    user = await register(gql)
    page = (await gql.ok(USERS, {"onlineOnly": True}, token=user.token))["users"]
    assert all(edge["node"]["online"] for edge in page["edges"])
    assert user.id not in [edge["node"]["id"] for edge in page["edges"]]


async def test_duplicates_ignoring_case_conflict(gql: GraphQLClient) -> None:
    first = await register(gql, unique_name("Carol"))
    register_dup = """mutation R($input: RegisterInput!) { register(input: $input) { token } }"""
    error = await gql.error(register_dup, {"input": {
        "username": first.username.upper(), "email": f"other_{first.email}", "password": PASSWORD}})
    assert error["extensions"] == {"code": "CONFLICT", "field": "username"}
    error = await gql.error(register_dup, {"input": {
        "username": unique_name(), "email": first.email.upper(), "password": PASSWORD}})
    assert error["extensions"] == {"code": "CONFLICT", "field": "email"}


async def test_concurrent_duplicate_registrations_create_one_user(
    gql: GraphQLClient, in_process_app: InProcessApp
) -> None:
    username = unique_name("race")
    mutation = """mutation R($input: RegisterInput!) { register(input: $input) { user { id } } }"""
    bodies = await asyncio.gather(*[
        gql.raw(mutation, {"input": {
            "username": username if i % 2 else username.upper(),
            "email": f"race{i}_{username}@example.com",
            "password": PASSWORD,
        }})
        for i in range(20)
    ])
    winners = [b for b in bodies if not b.get("errors")]
    codes = [b["errors"][0]["extensions"]["code"] for b in bodies if b.get("errors")]
    assert len(winners) == 1
    assert codes == ["CONFLICT"] * 19
    with pymongo.MongoClient(in_process_app.mongodb_url) as client:
        assert client[in_process_app.database]["users"].count_documents({"username_lower": username.lower()}) == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("username", "ab"),
        ("username", "x" * 33),
        ("username", "bad name"),
        ("username", "émile"),
        ("username", "semi;colon"),
        ("email", "not-an-email"),
        ("email", "a@b"),
        ("email", "two@@example.com"),
        ("email", "x" * 250 + "@example.com"),
        ("password", "short"),
        ("password", "p" * 129),
    ],
)
async def test_bad_registration_input_names_the_field(gql: GraphQLClient, field: str, value: str) -> None:
    values = {"username": unique_name(), "email": f"{unique_name()}@example.com", "password": PASSWORD}
    values[field] = value
    error = await gql.error(
        "mutation R($input: RegisterInput!) { register(input: $input) { token } }", {"input": values}
    )
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": field}
    assert field in error["message"]


async def test_wrong_password_and_unknown_user_look_the_same(gql: GraphQLClient) -> None:
    user = await register(gql)
    wrong = await gql.error(LOGIN, {"input": {"login": user.username, "password": "wrong password"}})
    unknown = await gql.error(LOGIN, {"input": {"login": unique_name("nobody"), "password": PASSWORD}})
    empty = await gql.error(LOGIN, {"input": {"login": user.username, "password": ""}})
    for error in (wrong, unknown, empty):
        assert error["extensions"] == {"code": "UNAUTHENTICATED"}
    assert wrong["message"] == unknown["message"] == empty["message"]
    # And the right password still works after the failures.
    again = (await gql.ok(LOGIN, {"input": {"login": user.username, "password": PASSWORD}}))["login"]
    assert again["user"]["id"] == user.id


async def test_schema_errors_are_bad_user_input(gql: GraphQLClient) -> None:
    user = await register(gql)
    for query in ["{ me { nope } }", "{ me { id ", "query Q($n: Int) { users(first: $n) { edges { cursor } } }"]:
        body = await gql.raw(query, {"n": "ten"}, token=user.token)
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body
