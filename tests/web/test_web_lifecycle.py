"""Editing, deleting, replying and reacting in the web client, end to end in real headless
Chromium: alice and bob in two browser contexts, every change made in one page shown live in
the other (messageEvents UPDATED / DELETED), mostly with the keyboard."""

from __future__ import annotations

import asyncio

from playwright.async_api import Browser, BrowserContext, Locator, Page, expect

from api.app_server import AppServer
from tests.utils.graphql import Account, GraphQLClient, register, unique_name
from tests.web.conftest import Artifacts
from tests.web.test_web_client import LIVE, Problems, expect_live, log_in, message_with, messages, new_page, open_chat


async def send(page: Page, text: str) -> None:
    await page.get_by_test_id("message-input").fill(text)
    await page.get_by_test_id("message-input").press("Enter")
    await expect(message_with(page, text)).to_have_attribute("data-state", "sent", timeout=LIVE)


def reaction(message: Locator, emoji: str) -> Locator:
    return message.locator(f'[data-testid="reaction"][data-emoji="{emoji}"]')


async def expect_reaction(message: Locator, emoji: str, count: int, mine: bool) -> None:
    chip = reaction(message, emoji)
    await expect(chip.get_by_test_id("reaction-count")).to_have_text(str(count), timeout=LIVE)
    await expect(chip).to_have_attribute("aria-pressed", "true" if mine else "false", timeout=LIVE)


async def test_edit_delete_reply_and_react_between_two_pages(
    app: AppServer, browser: Browser, gql: GraphQLClient, artifacts: Artifacts,
) -> None:
    problems = Problems()
    alice, bob = await register(gql, unique_name("alice")), await register(gql, unique_name("bob"))
    contexts: list[BrowserContext] = []

    async def start(account: Account, partner: Account) -> Page:
        context, page = await new_page(browser, app, problems, artifacts, account.username.split("_")[0])
        contexts.append(context)
        await log_in(page, account.username)
        await expect_live(page)
        await open_chat(page, partner.username)
        return page

    try:
        a, b = await asyncio.gather(start(alice, bob), start(bob, alice))
        composer = a.get_by_test_id("message-input")
        await send(a, "See you at 6")
        await expect(message_with(b, "See you at 6")).to_be_visible(timeout=LIVE)

        # ↑ in the empty composer edits alice's last message; Escape gives the draft back untouched.
        await composer.focus()
        await composer.press("ArrowUp")
        await expect(a.get_by_test_id("compose-mode")).to_have_attribute("data-mode", "edit")
        await expect(a.get_by_test_id("compose-mode-text")).to_have_text("See you at 6")
        await expect(composer).to_have_value("See you at 6")
        await composer.press("Escape")
        await expect(a.get_by_test_id("compose-mode")).to_be_hidden()
        await expect(composer).to_have_value("")
        # ↑ again, new text, Enter saves: edited in both pages, live.
        await composer.press("ArrowUp")
        await composer.fill("See you at 7")
        await artifacts.shot(a, "editing")
        await composer.press("Enter")
        await expect(a.get_by_test_id("compose-mode")).to_be_hidden()
        await expect(composer).to_have_value("")
        for page in (a, b):
            edited = message_with(page, "See you at 7")
            await expect(edited.get_by_test_id("message-edited")).to_be_visible(timeout=LIVE)
        await expect(message_with(b, "See you at 6")).to_have_count(0)

        # bob replies: the quote shows above his composer while he writes, then in both bubbles.
        original_b = message_with(b, "See you at 7")
        await original_b.get_by_test_id("action-reply").click()
        await expect(b.get_by_test_id("compose-mode")).to_have_attribute("data-mode", "reply")
        await expect(b.get_by_test_id("compose-mode-text")).to_have_text("See you at 7")
        await expect(b.get_by_test_id("message-input")).to_be_focused()
        await artifacts.shot(b, "replying")
        await send(b, "Perfect, 7 it is")
        await expect(b.get_by_test_id("compose-mode")).to_be_hidden()
        for page in (a, b):
            quote = message_with(page, "Perfect, 7 it is").get_by_test_id("message-quote")
            await expect(quote.get_by_test_id("quote-text")).to_have_text("See you at 7", timeout=LIVE)

        # bob reacts from the picker with the keyboard; alice sees the count, not highlighted.
        react = original_b.get_by_test_id("action-react")
        await react.focus()
        await b.keyboard.press("Enter")
        await expect(b.get_by_test_id("reaction-picker")).to_be_visible()
        await expect(react).to_have_attribute("aria-expanded", "true")
        await b.keyboard.press("Escape")  # closes the picker, focus back on React
        await expect(b.get_by_test_id("reaction-picker")).to_have_count(0)
        await expect(react).to_be_focused()
        await b.keyboard.press("Enter")
        await expect(b.get_by_test_id("pick-reaction").first).to_be_focused()
        await b.keyboard.press("Enter")  # the first emoji: 👍
        await expect_reaction(original_b, "👍", 1, mine=True)
        original_a = message_with(a, "See you at 7")
        await expect_reaction(original_a, "👍", 1, mine=False)
        # alice adds hers with the chip; then bob takes his back with his chip.
        await reaction(original_a, "👍").click()
        await expect_reaction(original_a, "👍", 2, mine=True)
        await expect_reaction(original_b, "👍", 2, mine=True)
        await artifacts.shot(a, "reactions")
        await reaction(original_b, "👍").click()
        await expect_reaction(original_b, "👍", 1, mine=False)
        await expect_reaction(original_a, "👍", 1, mine=True)

        # bob cannot edit or delete alice's message.
        await expect(original_b.get_by_test_id("action-edit")).to_have_count(0)
        await expect(original_b.get_by_test_id("action-delete")).to_have_count(0)

        # alice deletes it, after a confirmation (Cancel first keeps it): a tombstone everywhere,
        # and bob's reply now quotes "Message deleted".
        await original_a.get_by_test_id("action-delete").click()
        await expect(a.get_by_test_id("delete-confirmation")).to_contain_text("Delete this message for everyone?")
        await expect(a.get_by_test_id("delete-cancel")).to_be_focused()
        await a.keyboard.press("Enter")
        await expect(a.get_by_test_id("delete-confirmation")).to_have_count(0)
        await expect(original_a).to_be_visible()
        await original_a.get_by_test_id("action-delete").click()
        await artifacts.shot(a, "delete-confirmation")
        await a.get_by_test_id("delete-confirm").click()
        for page in (a, b):
            await expect(message_with(page, "See you at 7")).to_have_count(0, timeout=LIVE)
            deleted = messages(page).filter(has=page.locator('[data-testid="message-text"].deleted'))
            await expect(deleted).to_have_count(1, timeout=LIVE)
            await expect(deleted.get_by_test_id("message-text")).to_have_text("Message deleted")
            await expect(deleted.get_by_test_id("reaction")).to_have_count(0)
            await expect(deleted.get_by_test_id("action-reply")).to_have_count(0)
            quote = message_with(page, "Perfect, 7 it is").get_by_test_id("message-quote")
            await expect(quote.get_by_test_id("quote-text")).to_have_text("Message deleted", timeout=LIVE)
        await artifacts.shot(b, "deleted")

        # ↑ now edits alice's last message that is not deleted: none is left, so nothing happens.
        await composer.focus()
        await composer.press("ArrowUp")
        await expect(a.get_by_test_id("compose-mode")).to_be_hidden()

        # After a reload, history shows the same: the tombstone and the reply quoting it.
        await b.reload()
        await expect_live(b)
        await open_chat(b, alice.username)
        await expect(messages(b).get_by_test_id("message-text")).to_have_text(["Message deleted", "Perfect, 7 it is"])
        quote = message_with(b, "Perfect, 7 it is").get_by_test_id("quote-text")
        await expect(quote).to_have_text("Message deleted")
        problems.check()
    finally:
        for context in contexts:
            await context.close()
