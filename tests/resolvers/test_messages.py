"""Sending and reading messages over HTTP: validation, idempotency, authorisation, paging."""

from __future__ import annotations

import asyncio

import pytest

from tests.utils.graphql import HISTORY, MESSAGE, SEND, GraphQLClient, all_history, register, send


async def test_send_then_history_and_message(gql: GraphQLClient) -> None:
    alice, bob = await register(gql), await register(gql)
    first = await send(gql, alice, bob, "  hello bob  ")
    assert first["text"] == "hello bob"
    assert first["senderId"] == alice.id and first["receiverId"] == bob.id
    assert first["sender"]["id"] == alice.id and first["receiver"]["id"] == bob.id
    assert first["kind"] == "TEXT" and first["sentAt"].endswith("Z")
    second = await send(gql, bob, alice, "hi alice")
    for viewer, partner in ((alice, bob), (bob, alice)):
        texts = [m["text"] for m in await all_history(gql, viewer, partner)]
        assert texts == ["hello bob", "hi alice"]
    got = (await gql.ok(MESSAGE, {"id": second["id"]}, token=alice.token))["message"]
    assert got == {"id": second["id"], "text": "hi alice", "senderId": bob.id, "receiverId": alice.id}


async def test_messages_to_self_are_allowed(gql: GraphQLClient) -> None:
    alice = await register(gql)
    note = await send(gql, alice, alice, "note to self")
    assert [m["id"] for m in await all_history(gql, alice, alice)] == [note["id"]]


async def test_outsiders_see_nothing(gql: GraphQLClient) -> None:
    alice, bob, carol = await register(gql), await register(gql), await register(gql)
    secret = await send(gql, alice, bob, "between us")
    error = await gql.error(MESSAGE, {"id": secret["id"]}, token=carol.token)
    assert error["extensions"]["code"] == "NOT_FOUND"
    missing = await gql.error(MESSAGE, {"id": "01" + "0" * 24}, token=carol.token)
    assert missing["extensions"] == error["extensions"] and missing["message"] == error["message"]
    # carol's conversations with either of them are empty: she cannot name theirs.
    for partner in (alice, bob):
        assert await all_history(gql, carol, partner) == []


async def test_sender_cannot_be_chosen(gql: GraphQLClient) -> None:
    alice, bob = await register(gql), await register(gql)
    body = await gql.raw(SEND, {"input": {"receiverId": bob.id, "text": "x", "senderId": bob.id}}, token=alice.token)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "senderId" in body["errors"][0]["message"]
    sent = await send(gql, alice, bob, "from alice")
    assert sent["senderId"] == alice.id


async def test_same_client_id_twice_gives_one_message(gql: GraphQLClient) -> None:
    alice, bob = await register(gql), await register(gql)
    results = await asyncio.gather(*[send(gql, alice, bob, f"attempt {i}", client_id="c-42") for i in range(5)])
    assert len({r["id"] for r in results}) == 1
    assert results[0]["clientId"] == "c-42"
    history = await all_history(gql, alice, bob)
    assert len(history) == 1
    # The same clientId from another sender is another message.
    other = await send(gql, bob, alice, "bob's", client_id="c-42")
    assert other["id"] != results[0]["id"]


@pytest.mark.parametrize(
    ("variables", "code", "field"),
    [
        ({"text": ""}, "BAD_USER_INPUT", "text"),
        ({"text": " \n\t "}, "BAD_USER_INPUT", "text"),
        ({"text": "x" * 4001}, "BAD_USER_INPUT", "text"),
        ({"text": None}, "BAD_USER_INPUT", "text"),
        ({"text": "hi", "receiverId": "not-an-id"}, "BAD_USER_INPUT", "receiverId"),
        ({"text": "hi", "receiverId": "01" + "0" * 24}, "NOT_FOUND", "receiverId"),
        ({"text": "hi", "clientId": ""}, "BAD_USER_INPUT", "clientId"),
        ({"text": "hi", "clientId": "c" * 129}, "BAD_USER_INPUT", "clientId"),
    ],
)
async def test_bad_send_input_writes_nothing(gql: GraphQLClient, variables: dict, code: str, field: str) -> None:
    alice, bob = await register(gql), await register(gql)
    error = await gql.error(SEND, {"input": {"receiverId": bob.id, **variables}}, token=alice.token)
    assert error["extensions"] == {"code": code, "field": field}
    assert await all_history(gql, alice, bob) == []


async def test_exactly_4000_characters_after_trimming_is_fine(gql: GraphQLClient) -> None:
    alice, bob = await register(gql), await register(gql)
    assert len((await send(gql, alice, bob, "  " + "é" * 4000 + "  "))["text"]) == 4000
    # NFC: "e" + combining acute is one character after normalisation.
    assert (await send(gql, alice, bob, "e\u0301"))["text"] == "\u00e9"


@pytest.mark.parametrize(
    ("variables", "code", "field"),
    [
        ({"partnerId": "nope"}, "BAD_USER_INPUT", "partnerId"),
        ({"partnerId": "01" + "0" * 24}, "NOT_FOUND", "partnerId"),
        ({"last": 0}, "BAD_USER_INPUT", "last"),
        ({"last": 201}, "BAD_USER_INPUT", "last"),
        ({"before": "garbage!"}, "BAD_USER_INPUT", "before"),
        ({"before": "dXNlcjowMUFCQw"}, "BAD_USER_INPUT", "before"),
    ],
)
async def test_bad_history_arguments(gql: GraphQLClient, variables: dict, code: str, field: str) -> None:
    alice, bob = await register(gql), await register(gql)
    error = await gql.error(HISTORY, {"partnerId": bob.id, **variables}, token=alice.token)
    assert error["extensions"] == {"code": code, "field": field}


async def test_everything_needs_a_token(gql: GraphQLClient) -> None:
    alice, bob = await register(gql), await register(gql)
    for query, variables in ((SEND, {"input": {"receiverId": bob.id, "text": "x"}}),
                             (HISTORY, {"partnerId": bob.id}), (MESSAGE, {"id": alice.id})):
        assert (await gql.error(query, variables))["extensions"]["code"] == "UNAUTHENTICATED"
    assert await all_history(gql, alice, bob) == []
