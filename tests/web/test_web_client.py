"""The web client served at `/`, end to end in real headless Chromium on the real stack (the
shared app: whisper engine, real Redis and MongoDB). Screenshots of every step are saved
under test-artifacts/web/."""

from __future__ import annotations

import asyncio
import re
import wave
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Browser, BrowserContext, Locator, Page, Route, WebSocketRoute, expect

from api.app_server import AppServer
from tests.utils.audio import speak, word_error_rate, words
from tests.utils.graphql import PASSWORD, SEND, Account, GraphQLClient, all_history, register, unique_name
from tests.web.conftest import Artifacts, fake_microphone_args

DESKTOP = {"width": 1200, "height": 760}
PHONE = {"width": 390, "height": 780}
SENTENCE = "Could you send me the latest report before the team meeting on Friday afternoon?"
LIVE = 15_000  # ms: events that travel API -> Redis -> WebSocket -> page
TRANSCRIPTION = 60_000


# ---------------------------------------------------------------------------------------
# helpers

class Problems:
    """Uncaught page errors and Content-Security-Policy violations: there must be none."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def watch(self, page: Page, name: str) -> Page:
        page.on("pageerror", lambda error: self.items.append(f"{name}: uncaught {error}"))
        page.on("console", lambda msg: self.items.append(f"{name}: {msg.text}")
                if msg.type == "error" and "Content Security Policy" in msg.text else None)
        return page

    def check(self) -> None:
        assert not self.items, "\n".join(self.items)


async def new_page(browser: Browser, app: AppServer, problems: Problems, artifacts: Artifacts, name: str,
                   before_load: Callable[[BrowserContext], Awaitable[None]] | None = None,
                   **context_options: Any) -> tuple[BrowserContext, Page]:
    context = await browser.new_context(viewport=context_options.pop("viewport", DESKTOP), **context_options)
    if before_load is not None:
        await before_load(context)
    page = await context.new_page()
    page.set_default_timeout(10_000)
    problems.watch(page, name)
    artifacts.watch(name, page)
    await page.goto(app.url)
    return context, page


async def sign_up(page: Page, username: str) -> None:
    await page.get_by_test_id("signup-username").fill(username)
    await page.get_by_test_id("signup-email").fill(f"{username}@example.com")
    await page.get_by_test_id("signup-password").fill(PASSWORD)
    await page.get_by_test_id("signup-submit").click()
    await expect_live(page)


async def log_in(page: Page, login: str, password: str = PASSWORD) -> None:
    await page.get_by_test_id("login-login").fill(login)
    await page.get_by_test_id("login-password").fill(password)
    await page.get_by_test_id("login-submit").click()


async def expect_live(page: Page) -> None:
    """Logged in, and the WebSocket is acknowledged (so the user counts as online)."""
    await expect(page.get_by_test_id("logout")).to_be_visible()
    await expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "open", timeout=LIVE)


def contact(page: Page, username: str) -> Locator:
    return page.locator(f'[data-testid="contact"][data-username="{username}"]')


def messages(page: Page) -> Locator:
    return page.get_by_test_id("message")


def message_with(page: Page, text: str) -> Locator:
    return messages(page).filter(has=page.get_by_test_id("message-text").filter(has_text=text))


async def open_chat(page: Page, username: str) -> None:
    await contact(page, username).click()
    await expect(page.locator("#partner-name")).to_have_text(username)


def wav_seconds(path: Path) -> float:
    with wave.open(str(path)) as clip:
        return clip.getnframes() / clip.getframerate()


async def accounts(gql: GraphQLClient) -> tuple[Account, Account]:
    return await register(gql, unique_name("alice")), await register(gql, unique_name("bob"))


# ---------------------------------------------------------------------------------------
# the page itself

async def test_page_and_assets_are_served_with_strict_headers(app: AppServer, http: httpx.AsyncClient) -> None:
    page = await http.get(f"{app.url}/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-cache"
    csp = page.headers["content-security-policy"]
    for directive in ("default-src 'none'", "script-src 'self'", "style-src 'self'", "object-src 'none'",
                      "base-uri 'none'", "frame-ancestors 'none'", "media-src 'self' blob:"):
        assert directive in csp, csp
    assert "unsafe" not in csp and "http:" not in csp and "https:" not in csp
    assert re.search(r"connect-src 'self' ws://127\.0\.0\.1:\d+ wss://127\.0\.0\.1:\d+;", csp), csp
    assert 'src="/static/app.js"' in page.text and "http" not in page.text.replace("http-equiv", "")

    script = await http.get(f"{app.url}/static/app.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert "must-revalidate" in script.headers["cache-control"] and script.headers["etag"]
    again = await http.get(f"{app.url}/static/app.js", headers={"If-None-Match": script.headers["etag"]})
    assert again.status_code == 304
    assert (await http.get(f"{app.url}/static/styles.css")).headers["content-type"].startswith("text/css")
    for path in ("/static/README.md", "/static/..%2Fapi%2Fapp.py", "/static/.gitignore", "/static/nope.js",
                 "/static/sub/app.js"):
        assert (await http.get(f"{app.url}{path}")).status_code == 404, path
    assert (await http.head(f"{app.url}/")).status_code == 200


# ---------------------------------------------------------------------------------------
# end to end

async def test_sign_up_chat_live_and_presence(app: AppServer, browser: Browser, artifacts: Artifacts) -> None:
    problems = Problems()
    alice, bob = unique_name("alice"), unique_name("bob")
    alice_context, alice_page = await new_page(browser, app, problems, artifacts, "alice")
    bob_context, bob_page = await new_page(browser, app, problems, artifacts, "bob")
    try:
        await artifacts.shot(alice_page, "sign-up-screen")
        await sign_up(alice_page, alice)
        await sign_up(bob_page, bob)
        navigations: list[str] = []
        bob_page.on("framenavigated",
                    lambda frame: navigations.append(frame.url) if frame == bob_page.main_frame else None)

        # Both see each other online: bob from the online list, alice live from a presence event.
        await expect(contact(bob_page, alice)).to_have_attribute("data-online", "true", timeout=LIVE)
        await expect(contact(alice_page, bob)).to_have_attribute("data-online", "true", timeout=LIVE)

        await open_chat(bob_page, alice)
        # alice uses the keyboard: the contact is a button, opening it moves focus to the composer.
        await contact(alice_page, bob).focus()
        await alice_page.keyboard.press("Enter")
        await expect(alice_page.locator("#partner-name")).to_have_text(bob)
        await expect(alice_page.get_by_test_id("message-input")).to_be_focused()
        hello = f"Hello {bob}, this is a live message"
        await alice_page.get_by_test_id("message-input").fill(hello)
        await alice_page.get_by_test_id("message-input").press("Enter")
        await expect(alice_page.get_by_test_id("message-input")).to_have_value("")
        sent = message_with(alice_page, hello)
        await expect(sent).to_have_attribute("data-state", "sent", timeout=LIVE)
        assert await sent.get_attribute("data-client-id")  # optimistic, idempotent by clientId

        received = message_with(bob_page, hello)
        await expect(received).to_be_visible(timeout=LIVE)
        await expect(received).to_have_attribute("data-kind", "TEXT")
        await expect(received).to_have_attribute("data-id", await sent.get_attribute("data-id") or "?")

        reply = "Hi Alice, got it!"
        await bob_page.get_by_test_id("message-input").fill(reply)
        await bob_page.get_by_test_id("send-button").click()
        await expect(message_with(alice_page, reply)).to_be_visible(timeout=LIVE)
        await expect(messages(bob_page)).to_have_count(2)
        await expect(messages(alice_page)).to_have_count(2)
        assert navigations == [], f"bob's page navigated: {navigations}"
        await artifacts.shot(alice_page, "alice-conversation")
        await artifacts.shot(bob_page, "bob-sees-live-message")

        # alice closes her page: bob's contact list shows her offline.
        await alice_page.close()
        await expect(contact(bob_page, alice)).to_have_attribute("data-online", "false", timeout=LIVE)
        await expect(bob_page.locator("#partner-status")).to_contain_text("last seen")
        await artifacts.shot(bob_page, "alice-offline")

        # Log out: back to the log-in screen, and the token is gone.
        await bob_page.get_by_test_id("logout").click()
        await expect(bob_page.get_by_test_id("login-submit")).to_be_visible()
        assert await bob_page.evaluate("sessionStorage.length") == 0
        problems.check()
    finally:
        await alice_context.close()
        await bob_context.close()


async def test_voice_message_transcript_playback_and_search(
    app: AppServer, browser: Browser, launch_browser: Callable[..., Awaitable[Browser]], gql: GraphQLClient,
    artifacts: Artifacts, tmp_path: Path,
) -> None:
    problems = Problems()
    alice, bob = await accounts(gql)
    wav = speak(SENTENCE, tmp_path)
    seconds = wav_seconds(wav)
    mic_browser = await launch_browser(*fake_microphone_args(wav))
    bob_context, bob_page = await new_page(browser, app, problems, artifacts, "bob")
    alice_context, alice_page = await new_page(mic_browser, app, problems, artifacts, "alice")
    try:
        # Log in, errors inline first.
        await log_in(bob_page, bob.username, "not the password")
        await expect(bob_page.locator("#login-error")).not_to_be_empty()
        await artifacts.shot(bob_page, "login-error")
        await log_in(bob_page, bob.email)
        await expect_live(bob_page)
        await log_in(alice_page, alice.username)
        await expect_live(alice_page)
        await open_chat(bob_page, alice.username)
        await open_chat(alice_page, bob.username)

        # Everything bob's page shows for voice messages, as it happens.
        await bob_page.evaluate("""() => {
          window.__voice = [];
          const note = () => {
            for (const el of document.querySelectorAll('[data-testid="message"][data-kind="VOICE"]')) {
              const seen = `${el.dataset.status}|${el.textContent}`;
              if (window.__voice[window.__voice.length - 1] !== seen) window.__voice.push(seen);
            }
          };
          new MutationObserver(note).observe(document.getElementById('messages'),
            {subtree: true, childList: true, attributes: true, characterData: true});
        }""")
        media_statuses: list[int] = []
        bob_page.on("response", lambda r: media_statuses.append(r.status) if "/media/" in r.url else None)

        record = alice_page.get_by_test_id("record-button")
        await record.click()
        await expect(record).to_have_attribute("aria-pressed", "true")
        await expect(alice_page.locator("#recording-bar")).to_be_visible()
        await asyncio.sleep(seconds + 0.5)  # the fake microphone plays the sentence once
        await expect(alice_page.locator("#rec-timer")).not_to_have_text("0:00")
        await artifacts.shot(alice_page, "recording")
        await record.click()
        await expect(record).to_have_attribute("aria-pressed", "false")

        mine = messages(alice_page).filter(has=alice_page.locator("audio"))
        await expect(mine).to_have_attribute("data-state", "sent", timeout=LIVE)
        voice = bob_page.locator('[data-testid="message"][data-kind="VOICE"]')
        await expect(voice).to_have_count(1, timeout=LIVE)
        await artifacts.shot(bob_page, "voice-arrives")
        await expect(voice).to_have_attribute("data-status", "DONE", timeout=TRANSCRIPTION)
        transcript = await voice.get_by_test_id("message-text").inner_text()
        await artifacts.shot(bob_page, "voice-transcribed")
        history = await bob_page.evaluate("window.__voice")
        assert history[0].startswith("PENDING|") and "transcribing…" in history[0], history
        assert word_error_rate(SENTENCE, transcript) <= 0.25, transcript
        # alice's own bubble gets the transcript too (UPDATED reaches both sides).
        await expect(mine).to_have_attribute("data-status", "DONE", timeout=LIVE)
        await expect(mine.get_by_test_id("message-text")).to_have_text(transcript)

        # bob plays it: the recording loads (200/206) from its signed URL and plays.
        audio = voice.locator("audio")
        assert "/media/" in (await audio.get_attribute("src") or "")
        await audio.evaluate("a => a.play()")
        await bob_page.wait_for_function(
            "a => a.readyState >= 2 && a.currentTime > 0 && !a.error", arg=await audio.element_handle(), timeout=LIVE)
        assert media_statuses and set(media_statuses) <= {200, 206}, media_statuses
        await audio.evaluate("a => a.pause()")

        # Search (after a reload: the session survives it) finds a transcript word and opens
        # the conversation at the hit.
        word = max(set(words(transcript)) & set(words(SENTENCE)), key=len)
        await bob_page.reload()
        await expect_live(bob_page)
        await expect(bob_page.locator("#conversation-view")).to_be_hidden()
        await bob_page.get_by_test_id("search-input").fill(word)
        hit = bob_page.locator('[data-testid="search-result"][data-kind="message"]')
        await expect(hit).to_have_count(1, timeout=LIVE)
        await expect(hit.locator("mark")).to_have_text(re.compile(word, re.IGNORECASE))
        await artifacts.shot(bob_page, "search-results")
        await hit.click()
        await expect(bob_page.locator("#partner-name")).to_have_text(alice.username)
        found = bob_page.locator('[data-testid="message"][data-highlighted="true"]')
        await expect(found).to_have_attribute("data-kind", "VOICE")
        await expect(found).to_be_in_viewport()
        await artifacts.shot(bob_page, "search-opens-conversation")
        problems.check()
    finally:
        await alice_context.close()
        await bob_context.close()
        await mic_browser.close()


async def test_phone_scroll_back_through_200_messages_and_retry_a_failed_send(
    app: AppServer, browser: Browser, gql: GraphQLClient, artifacts: Artifacts,
) -> None:
    problems = Problems()
    alice, bob = await accounts(gql)
    expected = [f"Seeded message {i:03d}" for i in range(1, 201)]
    for i, text in enumerate(expected):
        sender, receiver = (alice, bob) if i % 2 == 0 else (bob, alice)
        await gql.ok(SEND, {"input": {"receiverId": receiver.id, "text": text}}, token=sender.token)

    # bob's WebSocket goes through Playwright, so the test can cut it.
    sockets: list[WebSocketRoute] = []

    def forward(socket: WebSocketRoute) -> None:
        socket.connect_to_server()
        sockets.append(socket)

    async def route_sockets(context: BrowserContext) -> None:
        await context.route_web_socket(re.compile(r"/graphql$"), forward)

    context, page = await new_page(browser, app, problems, artifacts, "bob", route_sockets, viewport=PHONE,
                                   is_mobile=True, has_touch=True)
    try:
        await log_in(page, bob.username)
        await expect_live(page)
        await expect(contact(page, alice.username)).to_have_attribute("data-unread", re.compile(r"^[1-9]"))
        await artifacts.shot(page, "phone-contacts")
        await contact(page, alice.username).tap()
        await expect(page.locator("#partner-name")).to_have_text(alice.username)
        await expect(page.get_by_test_id("contact").first).to_be_hidden()  # one pane at a time
        await expect(message_with(page, "Seeded message 200")).to_be_in_viewport()
        first_page = await messages(page).count()
        assert first_page < 200
        await artifacts.shot(page, "phone-conversation")

        # Scroll up, as a reader does, until the beginning.
        scroller = page.locator("#messages-scroller")
        box = await scroller.bounding_box()
        assert box
        await page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        while (count := await messages(page).count()) < 200:
            await page.mouse.wheel(0, -5000)
            await page.wait_for_function(
                "n => document.querySelectorAll('[data-testid=\"message\"]').length > n", arg=count, timeout=LIVE)
        await expect(page.locator("#history-start")).to_be_visible()
        texts = await page.get_by_test_id("message-text").all_inner_texts()
        assert texts == expected  # every message once, in order
        ids = await messages(page).evaluate_all("els => els.map(el => el.dataset.id)")
        assert len(set(ids)) == 200
        await artifacts.shot(page, "phone-scrolled-to-start")

        # A send that fails is marked and can be retried (same clientId: one message only).
        async def drop_sends(route: Route) -> None:
            if b"sendMessage" in (route.request.post_data_buffer or b""):
                await route.abort()
            else:
                await route.continue_()

        await page.route("**/graphql", drop_sends)
        text = "This one fails the first time"
        await page.get_by_test_id("message-input").fill(text)
        await page.get_by_test_id("send-button").tap()
        failed = message_with(page, text)
        await expect(failed).to_have_attribute("data-state", "failed")
        await expect(failed.get_by_test_id("retry-send")).to_be_visible()
        await artifacts.shot(page, "phone-send-failed")
        await page.unroute("**/graphql")
        await failed.get_by_test_id("retry-send").tap()
        await expect(failed).to_have_attribute("data-state", "sent", timeout=LIVE)
        history = await all_history(gql, bob, alice)
        assert [m["text"] for m in history].count(text) == 1

        # The connection drops: the page reconnects by itself and fetches what it missed.
        assert len(sockets) == 1
        await sockets[0].close(code=1012, reason="Service Restart")
        missed = "Sent while bob was reconnecting"
        await gql.ok(SEND, {"input": {"receiverId": bob.id, "text": missed}}, token=alice.token)
        await expect(message_with(page, missed)).to_be_visible(timeout=LIVE)
        await expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "open")
        assert len(sockets) == 2
        live = "And this one arrives live again"
        await gql.ok(SEND, {"input": {"receiverId": bob.id, "text": live}}, token=alice.token)
        await expect(message_with(page, live)).to_be_visible(timeout=LIVE)
        await artifacts.shot(page, "phone-reconnected")

        await page.get_by_test_id("back").tap()
        await expect(contact(page, alice.username)).to_be_visible()
        await expect(contact(page, alice.username)).to_have_attribute("data-unread", "0")
        problems.check()
    finally:
        await context.close()
