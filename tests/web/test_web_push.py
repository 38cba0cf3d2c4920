"""The web client's push opt-in and mute, in real headless Chromium against an app with push
on: the toggle shows but permission is never asked on page load, the service worker is served,
and muting from the conversation header marks the list — also a mute with an end, which the
list un-marks by itself when it ends. (Subscribing itself needs a browser vendor's push
service, out of reach here; tests/api/test_push.py covers delivery against a local one.)"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.async_api import Browser, Locator, Page, expect

from api.app_server import AppServer
from push.crypto import generate_private_key
from tests.utils.graphql import SEND, GraphQLClient, register, unique_name
from tests.web.conftest import Artifacts
from tests.web.test_web_client import LIVE, Problems, expect_live, log_in, new_page

MUTE = """mutation M($id: ID!, $until: DateTime) {
  muteConversation(conversationId: $id, until: $until) { muted } }"""
CONVERSATION = "query C($id: ID!) { conversation(id: $id) { muted mutedUntil } }"


@pytest.fixture(scope="module")
def push_app(app_factory: Callable[..., AppServer], own_deployment: Callable[[], dict[str, str]]) -> AppServer:
    return app_factory(**own_deployment(), STT_ENGINE="none", PUSH="on", VAPID_PRIVATE_KEY=generate_private_key(),
                       VAPID_SUBJECT="mailto:ops@chattergram.test").start()


def row(page: Page, username: str) -> Locator:
    return page.locator(f'[data-testid="contact"][data-username="{username}"]')


async def test_opt_in_toggle_and_muting_from_the_page(push_app: AppServer, browser: Browser,
                                                      artifacts: Artifacts) -> None:
    problems = Problems()
    async with httpx.AsyncClient(timeout=30) as http:
        gql = GraphQLClient(http, push_app.graphql_url)
        alice, bob = await register(gql, unique_name("alice")), await register(gql, unique_name("bob"))
        sent = (await gql.ok(SEND, {"input": {"receiverId": bob.id, "text": "hi bob"}}, token=alice.token))
        conversation = sent["sendMessage"]["id"] and (await gql.ok(
            "query H($p: ID!) { history(partnerId: $p, last: 1) { edges { node { conversationId } } } }",
            {"p": alice.id}, token=bob.token))["history"]["edges"][0]["node"]["conversationId"]
        worker = await http.get(f"{push_app.url.rstrip('/')}/static/sw.js")
        assert worker.status_code == 200 and worker.headers["content-type"].startswith("text/javascript")

        context, page = await new_page(browser, push_app, problems, artifacts, "bob")
        try:
            await log_in(page, bob.username)
            await expect_live(page)
            toggle = page.get_by_test_id("notify-toggle")
            await expect(toggle).to_be_visible()
            await expect(toggle).to_have_text("Notifications off")
            await expect(toggle).to_have_attribute("aria-pressed", "false")
            assert await page.evaluate("Notification.permission") == "default"  # never asked on load

            # A short mute made elsewhere (the page reloaded): the list marks it, then un-marks it when it ends.
            until = datetime.now(UTC) + timedelta(seconds=5)
            await gql.ok(MUTE, {"id": conversation, "until": until.isoformat()}, token=bob.token)
            await page.reload()
            await expect_live(page)
            await expect(row(page, alice.username)).to_have_attribute("data-muted", "true", timeout=LIVE)
            await artifacts.shot(page, "muted-in-list")
            await expect(row(page, alice.username)).to_have_attribute("data-muted", "false", timeout=10_000)

            await row(page, alice.username).click()
            select = page.get_by_test_id("mute-select")
            await expect(select).to_be_visible()
            await expect(select).to_have_value("")
            await select.select_option("forever")
            await expect(row(page, alice.username)).to_have_attribute("data-muted", "true")
            await expect(row(page, alice.username)).to_have_attribute("aria-label", re.compile(r", muted$"))
            assert (await gql.ok(CONVERSATION, {"id": conversation}, token=bob.token))["conversation"] == {
                "muted": True, "mutedUntil": None}
            await select.select_option("3600")
            await expect(select).to_have_value("until")
            await expect(select.locator('option[value="until"]')).to_contain_text("Muted until")
            await artifacts.shot(page, "muted-for-an-hour")
            muted = (await gql.ok(CONVERSATION, {"id": conversation}, token=bob.token))["conversation"]
            assert muted["muted"] is True and muted["mutedUntil"] is not None
            await select.select_option("")
            await expect(row(page, alice.username)).to_have_attribute("data-muted", "false")
            assert (await gql.ok(CONVERSATION, {"id": conversation}, token=bob.token))["conversation"]["muted"] is False
            problems.check()
        finally:
            await context.close()
