"""Hits on the spoken word, in real headless Chromium on the shared app (whisper engine): a
search hit on a voice message names the matching word with its time, opens the conversation
playing from that word, and the transcript word being spoken is highlighted as it plays."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser, expect

from api.app_server import AppServer
from tests.api.test_search import wait_for_transcript
from tests.utils.audio import speak, upload, words
from tests.utils.graphql import GraphQLClient
from tests.web.conftest import Artifacts
from tests.web.test_web_client import LIVE, Problems, accounts, expect_live, log_in, new_page

SENTENCE = "Good morning Bob, the quarterly budget review moves to Thursday afternoon."
CANDIDATES = ["budget", "quarterly", "thursday", "afternoon"]  # words well into the recording
SEND = "mutation Send($input: SendMessageInput!) { sendMessage(input: $input) { id } }"
SEARCH = """query S($query: String!) { search(query: $query) { hits {
  ... on MessageHit { message { id } matches { word start end } } } } }"""
TOLERANCE = 0.05  # seconds: a media element may land a seek a frame early

# What bob's page does, as it happens: where each playback starts from, and every word the
# transcript highlights (its text and timing, and the audio's time then).
RECORD = """() => {
  window.__plays = [];
  window.__spoken = [];
  document.addEventListener("play", (e) => window.__plays.push(e.target.currentTime), true);
  new MutationObserver((changes) => {
    for (const c of changes) {
      if (c.target.dataset.speaking !== "true") continue;
      const audio = c.target.closest(".bubble").querySelector("audio");
      window.__spoken.push({ word: c.target.textContent, start: Number(c.target.dataset.start),
        end: Number(c.target.dataset.end), at: audio.currentTime });
    }
  }).observe(document.getElementById("messages"),
    { subtree: true, attributes: true, attributeFilter: ["data-speaking"] });
}"""


def clock(seconds: float) -> str:
    return f"{int(seconds) // 60}:{int(seconds) % 60:02d}"


async def test_a_spoken_word_hit_plays_the_message_from_that_word_and_highlights_it(
    app: AppServer, browser: Browser, gql: GraphQLClient, artifacts: Artifacts, tmp_path: Path,
) -> None:
    problems = Problems()
    alice, bob = await accounts(gql)
    wav = speak(SENTENCE, tmp_path)
    uploaded = await upload(gql.client, gql.url, alice.token, wav.read_bytes(), wav.name, "audio/wav")
    sent = (await gql.ok(SEND, {"input": {"receiverId": bob.id, "audioId": uploaded["data"]["uploadAudio"]["id"]}},
                         token=alice.token))["sendMessage"]
    transcript = await wait_for_transcript(gql, bob, sent["id"])
    word = next((w for w in CANDIDATES if w in words(transcript)), None)
    assert word, f"none of {CANDIDATES} in the transcript {transcript!r}"
    hits = (await gql.ok(SEARCH, {"query": word}, token=bob.token))["search"]["hits"]
    assert [hit["message"]["id"] for hit in hits] == [sent["id"]], hits
    matches = hits[0]["matches"]
    assert matches and all(word in words(m["word"]) for m in matches), matches
    first = matches[0]

    context, page = await new_page(browser, app, problems, artifacts, "bob")
    try:
        await log_in(page, bob.username)
        await expect_live(page)
        await page.get_by_test_id("search-input").fill(word)
        hit = page.locator('[data-testid="search-result"][data-kind="message"]')
        await expect(hit).to_have_count(1, timeout=LIVE)
        shown = hit.get_by_test_id("word-hit")
        await expect(shown).to_have_count(min(len(matches), 3))
        await expect(shown.first).to_have_text(f"“{word}” at {clock(first['start'])}", ignore_case=True)
        await artifacts.shot(page, "word-hit")

        # Opened with the keyboard: the conversation, at the message, playing from the word.
        await page.evaluate(RECORD)
        await hit.focus()
        await page.keyboard.press("Enter")
        voice = page.locator(f'[data-testid="message"][data-id="{sent["id"]}"]')
        await expect(voice).to_have_attribute("data-highlighted", "true", timeout=LIVE)
        audio = voice.locator("audio")
        await page.wait_for_function("() => window.__plays.length > 0", timeout=LIVE)
        played_from = (await page.evaluate("window.__plays"))[0]
        assert first["start"] - TOLERANCE <= played_from < first["end"], (played_from, first)
        playing = await audio.evaluate("a => ({ paused: a.paused, now: a.currentTime })")
        assert not playing["paused"] and playing["now"] >= first["start"] - TOLERANCE, (playing, first)

        # The transcript is one span per timed word; the matched word lights up as it is spoken.
        spans = voice.get_by_test_id("transcript-word")
        starts = [float(s) for s in await spans.evaluate_all("ss => ss.map(s => s.dataset.start)")]
        assert first["start"] in starts, (starts, first)
        await expect(voice.get_by_test_id("message-text")).to_have_text(transcript)
        await page.wait_for_function(
            "start => window.__spoken.some(s => s.start === start)", arg=first["start"], timeout=LIVE)
        await artifacts.shot(page, "playing-from-word")
        spoken = await page.evaluate("window.__spoken")
        assert word in words(next(s["word"] for s in spoken if s["start"] == first["start"]))
        # Every highlight named the word being spoken then (or just before, in a pause).
        assert all(s["start"] - TOLERANCE <= s["at"] for s in spoken), spoken
        assert [s["start"] for s in spoken] == sorted(s["start"] for s in spoken), spoken

        # Paused, nothing stays highlighted.
        await audio.evaluate("a => a.pause()")
        await expect(voice.locator('[data-speaking="true"]')).to_have_count(0)
        problems.check()
    finally:
        await context.close()
