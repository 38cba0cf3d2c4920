"""The voice bubble's player in real headless Chromium: the waveform drawn from the server's
peaks (the played part highlighted, a click seeks), the speed control, and "skip silence",
which jumps over the pause between two speech segments while playing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from api.app_server import AppServer
from tests.utils.audio import speak, upload
from tests.utils.graphql import Account, GraphQLClient
from tests.utils.silence import ffmpeg, speech_with_pause
from tests.web.conftest import Artifacts
from tests.web.test_web_client import LIVE, TRANSCRIPTION, Problems, accounts, expect_live, log_in, new_page, open_chat

SEND = """mutation Send($input: SendMessageInput!) { sendMessage(input: $input) {
  id audio { durationSeconds waveform speechSegments { start end } } } }"""


def recorded_like_a_browser(wav: Path) -> Path:
    """webm/opus as MediaRecorder writes it: no duration and no cues, so seeking is harder."""
    out = wav.with_suffix(".live.webm")
    ffmpeg("-i", str(wav), "-ar", "48000", "-c:a", "libopus", "-b:a", "32k", "-live", "1", "-f", "webm", str(out))
    return out


async def send_voice(gql: GraphQLClient, sender: Account, receiver: Account, clip: Path) -> dict[str, Any]:
    """Upload `clip` and send it from `sender` to `receiver`: the sent message."""
    uploaded = await upload(gql.client, gql.url, sender.token, clip.read_bytes(), clip.name, "application/octet-stream")
    audio_id = uploaded["data"]["uploadAudio"]["id"]
    return (await gql.ok(SEND, {"input": {"receiverId": receiver.id, "audioId": audio_id}},
                         token=sender.token))["sendMessage"]


async def open_chat_as(page: Page, reader: Account, partner: Account) -> None:
    """Log `reader` in on `page` and open their chat with `partner`."""
    await log_in(page, reader.username)
    await expect_live(page)
    await open_chat(page, partner.username)


@pytest.mark.parametrize("recorded", ["wav", "browser-webm"])
async def test_a_voice_message_draws_its_waveform_and_plays_faster_and_without_its_silence(
    app: AppServer, browser: Browser, gql: GraphQLClient, artifacts: Artifacts, tmp_path: Path, recorded: str,
) -> None:
    problems = Problems()
    alice, bob = await accounts(gql)
    clip, _ = speech_with_pause(tmp_path, "Hello Bob, here is the first part.", "And after a long pause, the rest.")
    if recorded == "browser-webm":
        clip = recorded_like_a_browser(clip)
    sent = await send_voice(gql, alice, bob, clip)
    waveform, segments = sent["audio"]["waveform"], sent["audio"]["speechSegments"]
    assert len(segments) == 2, segments
    context, page = await new_page(browser, app, problems, artifacts, "bob")
    try:
        await open_chat_as(page, bob, alice)
        voice = page.locator('[data-testid="message"][data-kind="VOICE"]')
        await expect(voice).to_have_count(1, timeout=LIVE)
        # The transcript widens the bubble and so the waveform: measured before it lands, a click
        # aimed at 75 % of the bar would hit a quarter of it.
        await expect(voice).to_have_attribute("data-status", "DONE", timeout=TRANSCRIPTION)
        audio = voice.locator("audio")

        # The waveform: one bar per peak, as tall as the peak (silence a flat line).
        wave = voice.get_by_test_id("voice-waveform")
        await expect(wave).to_be_visible()
        bars = wave.locator("rect")
        await expect(bars).to_have_count(64)
        heights = [float(h) for h in await bars.evaluate_all("rs => rs.map(r => r.getAttribute('height'))")]
        assert heights == [max(peak * 22, 1) for peak in waveform]
        await artifacts.shot(page, "waveform")

        # Speed: 1x -> 1.5x -> 2x -> 1x, on the element that plays.
        speed = voice.get_by_test_id("voice-speed")
        await expect(speed).to_have_text("1×")
        for label, rate in (("1.5×", 1.5), ("2×", 2), ("1×", 1), ("1.5×", 1.5)):
            await speed.click()
            await expect(speed).to_have_text(label)
            assert await audio.evaluate("a => a.playbackRate") == rate

        # A click on the waveform seeks there, and the bars before it are highlighted.
        box = await wave.bounding_box()
        assert box is not None
        await wave.click(position={"x": box["width"] * 0.75, "y": box["height"] / 2})
        await page.wait_for_function("a => a.readyState >= 1 && a.currentTime > 0", arg=await audio.element_handle())
        duration = sent["audio"]["durationSeconds"]
        now = await audio.evaluate("a => a.currentTime")
        assert abs(now - duration * 0.75) < 0.1
        # The element knows the length (a live recording was stored with it), so it seeks anywhere.
        assert abs(await audio.evaluate("a => a.duration") - duration) < 0.1
        await expect(wave.locator("rect.played")).to_have_count(int(now / duration * 64))
        await expect(wave).to_have_attribute("aria-valuenow", str(round(now)))

        # Skip silence: played from just before the pause, it jumps to where the speech resumes.
        skip = voice.get_by_test_id("voice-skip-silence")
        await skip.click()
        await expect(skip).to_have_attribute("aria-pressed", "true")
        pause_start, pause_end = segments[0]["end"], segments[1]["start"]
        await audio.evaluate("""(a, at) => {
          window.__seeks = [];
          a.currentTime = at;
          a.addEventListener("seeking", () => window.__seeks.push(a.currentTime));
          return a.play();
        }""", pause_start - 0.3)
        await page.wait_for_function("end => window.__seeks.some(t => Math.abs(t - end) < 0.01)", arg=pause_end,
                                     timeout=LIVE)
        await audio.evaluate("a => a.pause()")
        await artifacts.shot(page, "skipped-silence")
        problems.check()
    finally:
        await context.close()


async def test_a_voice_bubble_keeps_its_width_whatever_its_transcript(
    app: AppServer, browser: Browser, gql: GraphQLClient, artifacts: Artifacts, tmp_path: Path,
) -> None:
    """The waveform is a seek bar: it must not grow under the pointer when the transcript lands.
    So a voice bubble is as wide with a one-word transcript as with a long one (before, the long
    transcript made it 2.8 times wider, and a click aimed at 75 % of the bar hit 26 %)."""
    problems = Problems()
    alice, bob = await accounts(gql)
    for sentence in ("Hello.", "Hello Bob, here is a much longer message, with a lot more to say than the other."):
        await send_voice(gql, alice, bob, speak(sentence, tmp_path / str(len(sentence))))
    context, page = await new_page(browser, app, problems, artifacts, "bob")
    try:
        await open_chat_as(page, bob, alice)
        voices = page.locator('[data-testid="message"][data-kind="VOICE"]')
        await expect(voices).to_have_count(2, timeout=LIVE)
        for n in range(2):
            await expect(voices.nth(n)).to_have_attribute("data-status", "DONE", timeout=TRANSCRIPTION)
        boxes = [await voices.nth(n).get_by_test_id("voice-waveform").bounding_box() for n in range(2)]
        widths = [box["width"] for box in boxes if box is not None]
        await artifacts.shot(page, "voice-bubbles")
        assert len(widths) == 2 and widths[0] == widths[1], widths
        problems.check()
    finally:
        await context.close()
