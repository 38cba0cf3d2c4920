"""The transcription evaluation set, made afresh at each run (no audio is committed).

Chat-style passages (names, numbers, times, everyday phrases; none of them used by the tests)
spoken by several espeak-ng voices at several rates and encoded as browsers record
(webm/opus, 48 kHz, 32 kbit/s), plus a few recorded for real by Chromium: its fake microphone
plays the speech into getUserMedia and MediaRecorder records it, as the web client does; a
few with seconds of silence around the speech (a hesitant start, a late stop), and recordings
of silence and faint noise alone (where a recogniser may invent words).
References are written in words, as espeak-ng speaks them (bench.wer normalises both sides).
"""

from __future__ import annotations

import asyncio
import base64
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

PASSAGES = (
    "Hi Priya, the train from Manchester is running about twenty minutes late, so start dinner without me.",
    "Could you ask Oliver whether the blue jacket still costs forty five pounds, or was it on sale?",
    "My new phone number ends in seven three nine two, text me when you land in Lisbon.",
    "Happy birthday Grandma! We booked a table for six people at the Italian place on Friday evening.",
    "Reminder: the plumber is coming on Thursday between eight and eleven, please leave the back gate open.",
    "I finished chapter twelve last night and honestly the ending surprised me, no spoilers for Marcus please.",
    "Sorry I missed your call, the kids had football practice and my battery died halfway through.",
    "Can we move our coffee to half past three? Daniela needs the meeting room until three fifteen.",
)
VOICES = ("en-us", "en-gb-x-rp", "en-gb-scotland", "en-us+f3")
RATES = (130, 160, 190)  # words per minute
BROWSER_VOICE, BROWSER_RATE = "en-us", 160
# Chromium as the web client records (web/recording.js): no voice processing, opus at 32 kbit/s.
CHROMIUM = Path("/usr/bin/chromium")
_RECORD = """async (ms) => {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1,
    echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
  const recorder = new MediaRecorder(stream, { mimeType: "audio/webm;codecs=opus", audioBitsPerSecond: 32000 });
  const chunks = [];
  recorder.ondataavailable = (event) => chunks.push(event.data);
  const stopped = new Promise((resolve) => { recorder.onstop = resolve; });
  recorder.start();
  await new Promise((resolve) => setTimeout(resolve, ms));
  recorder.stop();
  await stopped;
  for (const track of stream.getTracks()) track.stop();
  const bytes = new Uint8Array(await new Blob(chunks).arrayBuffer());
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text);
}"""


@dataclass(frozen=True)
class Clip:
    path: Path
    reference: str
    voice: str
    rate: int
    source: str  # "ffmpeg" (encoded like a browser), "chromium" (recorded by one), "padded" or "silence"


def speak(text: str, voice: str, rate: int, wav: Path) -> Path:
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(rate), "-w", str(wav), text], check=True, timeout=60)
    return wav


def to_webm(wav: Path) -> Path:
    out = wav.with_suffix(".webm")
    ffmpeg("-i", str(wav), "-ar", "48000", "-c:a", "libopus", "-b:a", "32k", str(out))
    return out


def wav_seconds(wav: Path) -> float:
    with wave.open(str(wav)) as f:
        return float(f.getnframes() / f.getframerate())


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", *args], check=True, timeout=120)


def padded_clips(folder: Path, passages: tuple[str, ...], before: float = 2.0, after: float = 3.0) -> list[Clip]:
    """Passages with `before` seconds of silence ahead and `after` behind, as browser webm."""
    clips = []
    for p, text in enumerate(passages):
        wav = speak(text, BROWSER_VOICE, BROWSER_RATE, folder / f"padded-{p}.wav")
        out = folder / f"padded-{p}.webm"
        ffmpeg("-i", str(wav), "-af", f"adelay={int(before * 1000)},apad=pad_dur={after}",
               "-ar", "48000", "-c:a", "libopus", "-b:a", "32k", str(out))
        clips.append(Clip(out, text, BROWSER_VOICE, BROWSER_RATE, "padded"))
    return clips


def silent_clips(folder: Path, seconds: float = 4.0) -> list[Clip]:
    """Digital silence and faint white noise (a quiet room), no speech: every word is invented."""
    clips = []
    for name, source in (("silence", "anullsrc=r=48000:cl=mono"), ("noise", "anoisesrc=r=48000:a=0.003:c=white")):
        out = folder / f"{name}.webm"
        ffmpeg("-f", "lavfi", "-i", source, "-t", f"{seconds}", "-ac", "1", "-ar", "48000", "-c:a", "libopus",
               "-b:a", "32k", str(out))
        clips.append(Clip(out, "", name, 0, "silence"))
    return clips


def synthetic_clips(folder: Path, passages: tuple[str, ...] = PASSAGES) -> list[Clip]:
    """Each passage in every voice; the rate turns with passage and voice, so every voice
    speaks at every rate and the set stays small enough for 2 cores."""
    clips = []
    for p, text in enumerate(passages):
        for v, voice in enumerate(VOICES):
            rate = RATES[(p + v) % len(RATES)]
            wav = speak(text, voice, rate, folder / f"p{p}-{voice.replace('+', '_')}-{rate}.wav")
            clips.append(Clip(to_webm(wav), text, voice, rate, "ffmpeg"))
    return clips


async def _record(wav: Path, out: Path) -> Path:
    from playwright.async_api import async_playwright

    args = ["--no-sandbox", "--disable-gpu", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={wav}%noloop"]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=args)
        try:
            page = await browser.new_page()
            # http://localhost is a secure context (getUserMedia needs one); the page is served from here.
            await page.route("http://localhost/**", lambda route: route.fulfill(body="<html></html>",
                                                                                 content_type="text/html"))
            await page.goto("http://localhost/")
            recorded = await page.evaluate(_RECORD, int(wav_seconds(wav) * 1000) + 700)
        finally:
            await browser.close()
    out.write_bytes(base64.b64decode(recorded))
    return out


def browser_clips(folder: Path, passages: tuple[str, ...]) -> list[Clip]:
    """Passages recorded in real time through Chromium's fake microphone and MediaRecorder."""
    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} is missing: `make test-system-deps` installs it (or pass --no-browser)")
    clips = []
    for p, text in enumerate(passages):
        wav = speak(text, BROWSER_VOICE, BROWSER_RATE, folder / f"browser-{p}.wav")
        webm = asyncio.run(_record(wav, folder / f"browser-{p}.webm"))
        clips.append(Clip(webm, text, BROWSER_VOICE, BROWSER_RATE, "chromium"))
    return clips
