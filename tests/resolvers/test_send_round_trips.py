"""What a 1:1 sendMessage asks the databases, counted (bench.send_cost's counters): a send to a
partner already written to is one Redis command (the send script, which also updates both
members' conversation lists) and nothing from MongoDB, the first one after the conversation
was made included; a first send reads the conversation once and makes it in one script, asking
MongoDB nothing (had Redis lost it, the persister restores what MongoDB had).

The app's caches of tokens and blocks are made to outlive the test, so what is counted is the
send itself, not a cache that happened to expire on a slow machine."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bench.send_cost import counters_installed, counting
from tests.utils.graphql import ME, Account, GraphQLClient, register
from tests.utils.in_process import InProcessApps

SEND = "mutation Send($input: SendMessageInput!) { sendMessage(input: $input) { id sentAt } }"


@pytest.fixture
async def gql(in_process_apps: InProcessApps) -> AsyncIterator[GraphQLClient]:
    app = await in_process_apps.start(revocation_cache_seconds=3600, block_cache_seconds=3600)
    async with app.client() as client:
        yield client


async def _send(gql: GraphQLClient, sender: Account, receiver: Account) -> None:
    await gql.ok(SEND, {"input": {"receiverId": receiver.id, "text": "hello"}}, token=sender.token)


async def test_a_send_to_a_known_partner_is_one_redis_round_trip_and_no_mongodb(gql: GraphQLClient) -> None:
    alice, bob = await register(gql), await register(gql)
    await _send(gql, alice, bob)  # makes their conversation
    await gql.ok(ME, token=bob.token)  # the app checked bob's token
    with counters_installed():
        for sender, receiver in [(alice, bob), (bob, alice), (alice, bob)]:
            with counting() as tally:
                await _send(gql, sender, receiver)
            assert tally.round_trips == [["EVALSHA"]]  # the send script, both lists included
            assert tally.mongo == []


async def test_a_first_send_reads_the_conversation_once_and_makes_it_in_one_script(gql: GraphQLClient) -> None:
    alice, bob, carol = await register(gql), await register(gql), await register(gql)
    await _send(gql, alice, bob)  # the app now knows alice's and bob's tokens and blocks
    await _send(gql, carol, bob)  # and carol's
    with counters_installed(), counting() as tally:
        await _send(gql, alice, carol)
    assert [commands[0] for commands in tally.round_trips] == [
        "EVALSHA",  # the conversation's mirror: none
        "EXISTS",  # carol exists (then remembered)
        "EVALSHA",  # made, and returned as made
        "EVALSHA",  # the send script, both lists included
    ]
    assert tally.mongo == []  # had Redis lost it, the persister restores MongoDB's state


async def test_a_new_users_first_send_asks_nothing_of_mongodb(
    gql: GraphQLClient,
) -> None:
    """Registering writes the Redis copies a request checks (the token generation, the blocked
    set: both empty), so nothing about a brand-new user is looked up in MongoDB."""
    alice, bob = await register(gql), await register(gql)
    with counters_installed(), counting() as tally:
        await _send(gql, alice, bob)
    assert tally.mongo == []
