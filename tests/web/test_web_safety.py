"""Blocking and reporting in the web client, end to end in real headless Chromium: alice reports
a message of bob's (an empty reason is refused next to the field), blocks him (his messages are
refused, hers to him too), and unblocks him (his next message arrives live)."""

from __future__ import annotations

import re
from typing import Any

from playwright.async_api import Browser, expect
from pymongo import AsyncMongoClient

from api.app_server import AppServer
from api.dev_servers import EmbeddedServers
from tests.conftest import SHARED_DATABASE, shared_mongodb_url
from tests.utils.graphql import SEND, GraphQLClient, register, unique_name
from tests.web.conftest import Artifacts
from tests.web.test_web_client import LIVE, Problems, expect_live, log_in, message_with, new_page, open_chat


async def bob_sends(gql: GraphQLClient, token: str, to: str, text: str) -> dict[str, Any]:
    return await gql.raw(SEND, {"input": {"receiverId": to, "text": text}}, token=token)


async def test_report_a_message_then_block_and_unblock_its_sender(
    app: AppServer, browser: Browser, gql: GraphQLClient, artifacts: Artifacts, dev_servers: EmbeddedServers,
) -> None:
    problems = Problems()
    alice, bob = await register(gql, unique_name("alice")), await register(gql, unique_name("bob"))
    spam = f"cheap watches {unique_name('w')}"
    assert not (await bob_sends(gql, bob.token, alice.id, spam)).get("errors")
    context, page = await new_page(browser, app, problems, artifacts, "alice")
    try:
        await log_in(page, alice.username)
        await expect_live(page)
        await open_chat(page, bob.username)
        bubble = message_with(page, spam)
        await expect(bubble).to_be_visible()

        # Report: an empty reason is the server's BAD_USER_INPUT, next to the field.
        await bubble.get_by_test_id("report-message").click()
        await expect(page.get_by_test_id("report-reason")).to_be_focused()
        await page.get_by_test_id("report-submit").click()
        await expect(bubble.get_by_role("alert")).to_have_text(re.compile("reason must be 1-1000 characters", re.I))
        await page.get_by_test_id("report-reason").fill("spam")
        await page.get_by_test_id("report-reason").press("Enter")
        await expect(bubble.get_by_test_id("reported")).to_be_visible()
        await expect(page.get_by_test_id("report-form")).to_have_count(0)
        await artifacts.shot(page, "reported")
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(shared_mongodb_url(dev_servers))
        try:
            stored = await mongo[SHARED_DATABASE]["reports"].find_one({"reporter_id": alice.id})
        finally:
            await mongo.close()
        assert stored is not None and (stored["text"], stored["reason"], stored["sender_id"]) == (spam, "spam", bob.id)

        # Block: bob's messages are refused, and so are alice's to him until she unblocks.
        toggle = page.get_by_test_id("block-toggle")
        await expect(toggle).to_have_text("Block")
        await toggle.click()
        await expect(toggle).to_have_text("Unblock")
        await expect(toggle).to_have_attribute("aria-pressed", "true")
        refused = await bob_sends(gql, bob.token, alice.id, "are you there?")
        assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN", refused
        await page.get_by_test_id("message-input").fill("leave me alone")
        await page.get_by_test_id("message-input").press("Enter")
        await expect(message_with(page, "leave me alone")).to_have_attribute("data-state", "failed", timeout=LIVE)
        await artifacts.shot(page, "blocked")

        # Unblock: bob's next message arrives live.
        await toggle.click()
        await expect(toggle).to_have_text("Block")
        assert not (await bob_sends(gql, bob.token, alice.id, "sorry about that")).get("errors")
        await expect(message_with(page, "sorry about that")).to_be_visible(timeout=LIVE)
        await artifacts.shot(page, "unblocked")
        problems.check()
    finally:
        await context.close()
