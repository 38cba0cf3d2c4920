"""The page acts on the server's RESUBSCRIBE error (a subscription ended, events may be lost):
it subscribes again and refetches what it shows, the open conversation and the conversation
list. bob's WebSocket goes through Playwright, which loses his `messageEvents` events, then
ends that subscription the way the server does when its pub/sub connection drops
(tests/api/test_pubsub_reconnect.py shows the server side on a real Redis)."""

from __future__ import annotations

import json
import re

from playwright.async_api import Browser, BrowserContext, WebSocketRoute, expect

from api.app_server import AppServer
from tests.utils.graphql import SEND, GraphQLClient, register, unique_name
from tests.web.conftest import Artifacts
from tests.web.test_web_client import LIVE, Problems, accounts, contact, log_in, message_with, new_page, open_chat

RESUBSCRIBE_ERROR = {"message": "Live events were interrupted and some may be lost: subscribe again, then refetch",
                     "extensions": {"code": "RESUBSCRIBE", "reason": "CONNECTION_LOST"}}


async def test_the_page_resubscribes_and_refetches_after_resubscribe(
    app: AppServer, browser: Browser, gql: GraphQLClient, artifacts: Artifacts,
) -> None:
    problems = Problems()
    alice, bob = await accounts(gql)
    carol = await register(gql, unique_name("carol"))
    await gql.ok(SEND, {"input": {"receiverId": bob.id, "text": "Before the drop"}}, token=alice.token)

    message_subscriptions: list[str] = []  # ids of bob's messageEvents subscriptions, in order
    lost: set[str] = set()  # subscription ids whose events never reach the page
    pages: list[WebSocketRoute] = []

    def route(page_side: WebSocketRoute) -> None:
        server_side = page_side.connect_to_server()
        pages.append(page_side)

        def from_page(message: str | bytes) -> None:
            frame = json.loads(message)
            if frame.get("type") == "subscribe" and "messageEvents" in frame["payload"]["query"]:
                message_subscriptions.append(frame["id"])
            server_side.send(message)

        def from_server(message: str | bytes) -> None:
            if json.loads(message).get("id") not in lost:
                page_side.send(message)

        page_side.on_message(from_page)
        server_side.on_message(from_server)

    async def route_sockets(context: BrowserContext) -> None:
        await context.route_web_socket(re.compile(r"/graphql$"), route)

    context, page = await new_page(browser, app, problems, artifacts, "bob", route_sockets)
    try:
        await log_in(page, bob.username)
        await open_chat(page, alice.username)
        await expect(message_with(page, "Before the drop")).to_be_visible()
        [first] = message_subscriptions

        # Events are lost, then the server ends the subscription with RESUBSCRIBE.
        lost.add(first)
        await gql.ok(SEND, {"input": {"receiverId": bob.id, "text": "Lost in the gap"}}, token=alice.token)
        await gql.ok(SEND, {"input": {"receiverId": bob.id, "text": "Carol, also lost"}}, token=carol.token)
        [socket] = pages
        socket.send(json.dumps({"id": first, "type": "next", "payload": {"data": None, "errors": [RESUBSCRIBE_ERROR]}}))
        socket.send(json.dumps({"id": first, "type": "complete"}))

        # Subscribed again (a new id, same socket) and refetched: the open conversation and the list.
        await expect(message_with(page, "Lost in the gap")).to_be_visible(timeout=LIVE)
        await expect(contact(page, carol.username)).to_have_attribute("data-unread", "1", timeout=LIVE)
        assert len(message_subscriptions) == 2 and message_subscriptions[1] != first
        assert len(pages) == 1, "the socket itself stayed up"
        await artifacts.shot(page, "refetched-after-resubscribe")

        await gql.ok(SEND, {"input": {"receiverId": bob.id, "text": "Live again"}}, token=alice.token)
        await expect(message_with(page, "Live again")).to_be_visible(timeout=LIVE)
        problems.check()
    finally:
        await context.close()
