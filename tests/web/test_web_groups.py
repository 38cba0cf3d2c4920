"""Group conversations in the web client, end to end in real headless Chromium: three people
in three browser contexts, a group made in one page, live messages, typing, unread badges,
members, roles, renaming (and its inline error) and removal."""

from __future__ import annotations

import asyncio
import re

from playwright.async_api import Browser, BrowserContext, Locator, Page, expect

from api.app_server import AppServer
from tests.utils.graphql import SEND, Account, GraphQLClient, register, unique_name
from tests.web.conftest import Artifacts
from tests.web.test_web_client import LIVE, Problems, expect_live, log_in, message_with, messages, new_page


def group_row(page: Page, title: str) -> Locator:
    return page.locator(f'[data-testid="contact"][data-kind="GROUP"][data-title="{title}"]')


def member(page: Page, username: str) -> Locator:
    return page.locator(f'[data-testid="group-member"][data-username="{username}"]')


async def send(page: Page, text: str) -> None:
    await page.get_by_test_id("message-input").fill(text)
    await page.get_by_test_id("message-input").press("Enter")
    await expect(message_with(page, text)).to_have_attribute("data-state", "sent", timeout=LIVE)


async def test_a_group_made_in_one_page_lives_in_three(
    app: AppServer, browser: Browser, gql: GraphQLClient, artifacts: Artifacts,
) -> None:
    problems = Problems()
    alice, bob, carol = [await register(gql, unique_name(name)) for name in ("alice", "bob", "carol")]
    contexts: list[BrowserContext] = []

    async def start(account: Account) -> Page:
        context, page = await new_page(browser, app, problems, artifacts, account.username.split("_")[0])
        contexts.append(context)
        await log_in(page, account.username)
        await expect_live(page)
        return page

    try:
        a, b, c = await asyncio.gather(start(alice), start(bob), start(carol))

        # alice makes the group with the keyboard: New group, a title, bob ticked, Enter.
        title = unique_name("Trip")
        await a.get_by_test_id("new-group").focus()
        await a.keyboard.press("Enter")
        await expect(a.get_by_test_id("group-title")).to_be_focused()
        await a.keyboard.press("Enter")  # no name yet: the server's BAD_USER_INPUT, under the field
        await expect(a.locator("#group-title-error")).to_have_text("Title must be 1-100 characters after trimming.")
        await expect(a.get_by_test_id("group-title")).to_have_attribute("aria-invalid", "true")
        await a.keyboard.type(title)
        await expect(a.locator("#group-title-error")).to_be_empty()  # editing the field clears its error
        await expect(a.get_by_test_id("group-title")).not_to_have_attribute("aria-invalid", "true")
        # People are found by name on the server too: dave signed up after alice's page loaded
        # and was never online, so the page only learns of him from the search.
        dave = await register(gql, unique_name("dave"))
        await a.keyboard.press("Tab")
        await expect(a.get_by_test_id("group-find")).to_be_focused()
        await a.keyboard.type(dave.username)
        await expect(a.get_by_role("checkbox", name=dave.username, exact=True)).not_to_be_checked(timeout=LIVE)
        await a.get_by_test_id("group-find").fill(bob.username)
        await expect(a.get_by_role("checkbox", name=dave.username, exact=True)).to_have_count(0)
        await a.get_by_role("checkbox", name=bob.username, exact=True).check()
        await a.get_by_test_id("group-find").fill("")  # bob stays ticked while the list changes
        await expect(a.get_by_role("checkbox", name=bob.username, exact=True)).to_be_checked()
        await artifacts.shot(a, "new-group")
        await a.get_by_test_id("group-title").press("Enter")
        await expect(a.locator("#partner-name")).to_have_text(title)
        await expect(a.get_by_test_id("new-group-form")).to_be_hidden()
        await expect(group_row(a, title)).to_have_attribute("aria-current", "true")
        # bob is told live (MEMBER_ADDED); carol is not in it.
        await expect(group_row(b, title)).to_be_visible(timeout=LIVE)
        await expect(group_row(b, title)).to_have_attribute("aria-label", f"{title}, group of 2")
        await expect(group_row(c, title)).to_have_count(0)

        # Members with their roles; alice adds carol from the panel.
        await a.get_by_role("button", name="Members").click()
        await expect(member(a, alice.username)).to_have_attribute("data-role", "OWNER")
        await expect(member(a, bob.username)).to_have_attribute("data-role", "MEMBER")
        await expect(member(a, bob.username).get_by_test_id("member-role")).to_have_text("member")
        await a.get_by_test_id("add-members-submit").click()  # nobody ticked: said next to the button
        await expect(a.locator("#add-members-error")).to_have_text("Pick at least one person to add.")
        await a.get_by_test_id("add-find").fill(carol.username)
        await a.get_by_role("checkbox", name=carol.username, exact=True).check()
        await a.get_by_test_id("add-members-submit").click()
        await expect(member(a, carol.username)).to_have_attribute("data-role", "MEMBER")
        await expect(a.locator("#add-members-error")).to_be_empty()
        await expect(a.get_by_test_id("partner-status")).to_contain_text("3 members")
        await expect(group_row(c, title)).to_be_visible(timeout=LIVE)
        await expect(group_row(b, title)).to_have_attribute("aria-label", f"{title}, group of 3", timeout=LIVE)

        # A bad title is refused by the server and said next to the field; a good one reaches everyone.
        rename = a.get_by_test_id("rename-input")
        await rename.fill("   ")
        await rename.press("Enter")
        await expect(a.locator("#rename-error")).to_have_text("Title must be 1-100 characters after trimming.")
        await expect(rename).to_have_attribute("aria-invalid", "true")
        await artifacts.shot(a, "rename-error")
        title = unique_name("Trip to Lisbon")
        await rename.fill(title)
        await rename.press("Enter")
        await expect(a.locator("#partner-name")).to_have_text(title)
        await expect(a.locator("#rename-error")).to_be_empty()
        await expect(rename).not_to_have_attribute("aria-invalid", "true")
        await expect(group_row(b, title)).to_be_visible(timeout=LIVE)  # RENAMED, live
        await expect(group_row(c, title)).to_be_visible(timeout=LIVE)
        await a.keyboard.press("Escape")  # closes the panel, focus back on its button
        await expect(a.get_by_test_id("group-panel")).to_be_hidden()
        await expect(a.get_by_test_id("group-toggle")).to_be_focused()

        # bob writes; carol has not opened the group: an unread badge; alice sees who wrote.
        await group_row(b, title).click()
        await expect(b.locator("#partner-name")).to_have_text(title)
        hello = "Hello group, bob here"
        await send(b, hello)
        await expect(message_with(a, hello)).to_be_visible(timeout=LIVE)
        await expect(message_with(a, hello).get_by_test_id("message-sender")).to_have_text(bob.username)
        await expect(message_with(b, hello).get_by_test_id("message-sender")).to_have_count(0)  # mine
        await expect(group_row(c, title)).to_have_attribute("data-unread", "1", timeout=LIVE)
        await expect(group_row(c, title).locator(".badge")).to_have_text("1")
        await expect(c).to_have_title("(1) Chattergram")
        await artifacts.shot(c, "unread-badge")

        # carol opens it (read), types (named to the others), and writes.
        await group_row(c, title).click()
        await expect(message_with(c, hello)).to_be_visible()
        await expect(group_row(c, title)).to_have_attribute("data-unread", "0")
        await c.get_by_test_id("message-input").fill("I am typing")
        await expect(a.locator("#typing")).to_have_text(f"{carol.username} is typing…", timeout=LIVE)
        await expect(b.locator("#typing")).to_have_text(f"{carol.username} is typing…", timeout=LIVE)
        await c.get_by_test_id("message-input").fill("")
        carols = "Carol says hi to both of you"
        await send(c, carols)
        for page in (a, b):
            await expect(message_with(page, carols).get_by_test_id("message-sender")).to_have_text(
                carol.username, timeout=LIVE)
        await expect(a.locator("#typing")).to_have_text("")
        alices = "Welcome, everyone"
        await send(a, alices)
        for page in (b, c):
            await expect(message_with(page, alices)).to_be_visible(timeout=LIVE)
        for page in (a, b, c):
            texts = await page.get_by_test_id("message-text").all_inner_texts()
            assert texts == [hello, carols, alices]
        await artifacts.shot(b, "group-conversation")

        # Search, optionally only in the open conversation (by its conversationId).
        group_id = await group_row(b, title).get_attribute("data-conversation-id")
        await gql.ok(SEND, {"input": {"receiverId": bob.id, "text": "Welcome back, bob"}}, token=alice.token)
        await b.get_by_test_id("search-input").fill("welcome")
        hits = b.locator('[data-testid="search-result"][data-kind="message"]')
        await expect(hits).to_have_count(2, timeout=LIVE)
        rows = b.get_by_test_id("contact")  # most recent activity first: the DIRECT one, then the group
        await expect(rows.nth(0)).to_have_attribute("data-username", alice.username)
        await expect(rows.nth(0)).to_have_attribute("data-kind", "DIRECT")
        await expect(rows.nth(1)).to_have_attribute("data-title", title)
        await b.get_by_role("checkbox", name="Only in this conversation").check()
        await expect(hits).to_have_count(1)
        await expect(hits).to_have_attribute("data-conversation-id", group_id or "?")
        await expect(hits).to_contain_text(f"{alice.username} in {title}")
        await hits.click()
        await expect(b.locator('[data-testid="message"][data-highlighted="true"]')).to_contain_text(alices)
        await b.get_by_test_id("search-input").press("Escape")

        # Roles: alice makes bob an admin, then a member again; bob's page still offers what an
        # admin may do, and the server's FORBIDDEN is said next to the member it concerns.
        await a.get_by_test_id("group-toggle").click()
        await a.get_by_role("button", name=f"Make {bob.username} an admin").click()
        await expect(member(a, bob.username)).to_have_attribute("data-role", "ADMIN")
        await b.get_by_test_id("group-toggle").click()
        remove_carol = b.get_by_role("button", name=f"Remove {carol.username} from the group")
        await expect(remove_carol).to_be_visible()
        await a.get_by_role("button", name=f"Make {bob.username} a member").click()
        await expect(member(a, bob.username)).to_have_attribute("data-role", "MEMBER")
        await remove_carol.click()
        await expect(member(b, carol.username).get_by_test_id("member-error")).to_have_text(
            "Not allowed: Owners remove anyone, admins remove members; anyone may leave.")
        await expect(member(a, carol.username)).to_have_count(1)
        await artifacts.shot(b, "forbidden")
        await b.keyboard.press("Escape")
        await expect(b.get_by_test_id("group-panel")).to_be_hidden()

        # alice removes carol: carol's page lets go of the group and gets nothing more from it.
        await a.get_by_role("button", name=f"Remove {carol.username} from the group").click()
        await expect(member(a, carol.username)).to_have_count(0)
        await expect(c.get_by_test_id("conversation-notice")).to_contain_text(
            f"no longer a member of “{title}”", timeout=LIVE)
        await expect(c.locator("#conversation-view")).to_be_hidden()
        await expect(group_row(c, title)).to_have_count(0)
        await expect(b.get_by_test_id("partner-status")).to_contain_text("2 members", timeout=LIVE)
        after = "Sent after carol was removed"
        await send(a, after)
        await expect(message_with(b, after)).to_be_visible(timeout=LIVE)
        await send(b, "And bob answers")
        await expect(message_with(a, "And bob answers")).to_be_visible(timeout=LIVE)
        await expect(b.get_by_test_id("contact").first).to_have_attribute("data-title", title)  # on top again
        # Both later messages reached bob and alice; carol's page shows neither, nor any unread.
        await expect(messages(c)).to_have_count(0)
        await expect(group_row(c, title)).to_have_count(0)
        await expect(c).to_have_title("Chattergram")
        await artifacts.shot(c, "removed")

        # bob leaves: alice sees the group shrink to herself.
        await b.get_by_test_id("group-toggle").click()
        await expect(b.get_by_test_id("rename-input")).to_be_hidden()  # a member does not manage
        await expect(b.get_by_role("button", name=re.compile(r"^Remove "))).to_have_count(0)
        await b.get_by_test_id("leave-group").click()
        await expect(b.get_by_test_id("conversation-notice")).to_have_text(f"You left “{title}”.")
        await expect(group_row(b, title)).to_have_count(0)
        await expect(a.get_by_test_id("partner-status")).to_contain_text("1 member:", timeout=LIVE)
        problems.check()
    finally:
        for context in contexts:
            await context.close()
