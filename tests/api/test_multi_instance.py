"""Two API instances sharing Redis and MongoDB act as one service."""

from __future__ import annotations

import httpx

from api.app_server import AppServer
from api.dev_servers import EmbeddedServers
from tests.utils.graphql import GraphQLClient, all_history, register, send
from tests.utils.ws import MESSAGE_EVENTS, connect, user_channel, wait_for_subscribers


async def test_multi_instance_messages(app: AppServer, second_app: AppServer, dev_servers: EmbeddedServers) -> None:
    a, b = app, second_app
    async with httpx.AsyncClient(timeout=30) as http:
        gql_a, gql_b = GraphQLClient(http, a.graphql_url), GraphQLClient(http, b.graphql_url)
        alice, bob = await register(gql_a), await register(gql_b)
        async with connect(a.ws_url, bob.token) as bob_on_a, connect(b.ws_url, alice.token) as alice_on_b:
            await bob_on_a.subscribe(MESSAGE_EVENTS)
            await alice_on_b.subscribe(MESSAGE_EVENTS)
            await wait_for_subscribers(dev_servers.redis_url, user_channel(bob.id))
            await wait_for_subscribers(dev_servers.redis_url, user_channel(alice.id))
            sent = await send(gql_b, alice, bob, "sent through B")
            for socket in (bob_on_a, alice_on_b):
                event = (await socket.next_payload())["data"]["messageEvents"]
                assert event["message"]["id"] == sent["id"] and event["type"] == "CREATED"
        # History written through B reads the same through A.
        assert [m["id"] for m in await all_history(gql_a, bob, alice)] == [sent["id"]]
