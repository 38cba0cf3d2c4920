"""Deepgram retries against the local fake Deepgram server: how long each retry waits, and why.

`Retry-After` (delay-seconds or an HTTP date) is honoured on 429 and 5xx answers, with a little
jitter on top and never beyond the cap; without it the backoff is exponential and jittered."""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import AsyncIterator, Iterator
from email.utils import formatdate

import pytest

from tests.utils.fake_deepgram import FakeDeepgram, Outcome, listen_response
from transcription.base import TranscriptionFailed
from transcription.deepgram import DeepgramTranscriber, parse_retry_after, retry_delay

OK = Outcome(200, listen_response([("Call me back.", 0.9)]))
BUSY = {"err_code": "TOO_MANY_REQUESTS", "err_msg": "slow down"}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeDeepgram]:
    with FakeDeepgram() as server:
        yield server


@pytest.fixture
async def deepgram(fake: FakeDeepgram) -> AsyncIterator[DeepgramTranscriber]:
    fake.requests.clear()
    transcriber = DeepgramTranscriber(api_key="k", base_url=fake.url, attempts=3, backoff_seconds=0.05,
                                      max_retry_wait_seconds=5.0)
    yield transcriber
    await transcriber.close()


def gaps(fake: FakeDeepgram) -> list[float]:
    at = [request["at"] for request in fake.requests]
    return [later - earlier for earlier, later in itertools.pairwise(at)]


async def test_retry_after_seconds_is_waited(fake: FakeDeepgram, deepgram: DeepgramTranscriber) -> None:
    fake.answer(Outcome(429, BUSY, headers={"Retry-After": "1"}), OK)
    result = await deepgram.transcribe(b"audio", "audio/ogg")
    assert result.text == "Call me back."
    [gap] = gaps(fake)
    assert 1.0 <= gap < 1.6  # 1 s asked, at most 0.1 s of jitter, some scheduling


async def test_retry_after_http_date_is_waited(fake: FakeDeepgram, deepgram: DeepgramTranscriber) -> None:
    when = time.time() + 2.5
    fake.answer(Outcome(503, BUSY, headers={"Retry-After": formatdate(when, usegmt=True)}), OK)
    await deepgram.transcribe(b"audio", "audio/ogg")
    [gap] = gaps(fake)
    # The date has whole seconds: the retry comes 1.5-2.5 s later (plus jitter), not 0.05 s later.
    assert 1.0 <= gap < 3.8


async def test_a_long_retry_after_is_capped(fake: FakeDeepgram) -> None:
    fake.requests.clear()
    fake.answer(Outcome(429, BUSY, headers={"Retry-After": "3600"}), OK)
    capped = DeepgramTranscriber(api_key="k", base_url=fake.url, max_retry_wait_seconds=0.5)
    try:
        await capped.transcribe(b"audio", "audio/ogg")
    finally:
        await capped.close()
    [gap] = gaps(fake)
    assert 0.5 <= gap < 1.0


async def test_without_retry_after_the_backoff_is_exponential_with_jitter(
    fake: FakeDeepgram, deepgram: DeepgramTranscriber
) -> None:
    fake.answer(Outcome(500, BUSY), Outcome(429, BUSY, headers={"Retry-After": "soon"}), then=Outcome(500, BUSY))
    with pytest.raises(TranscriptionFailed) as failed:
        await deepgram.transcribe(b"audio", "audio/ogg")
    assert failed.value.retryable and len(fake.requests) == 3
    first, second = gaps(fake)
    assert 0.025 <= first < 0.4 and 0.05 <= second < 0.5  # 0.05 s then 0.1 s, each jittered into [d/2, d]


def test_retry_delays() -> None:
    rng = random.Random(7)
    now = time.time()
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30, abs=1)
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now=now) == 0.0
    for unreadable in (None, "", "soon", "-5", "1.5", "Wed, 99 Foo 2026"):
        assert parse_retry_after(unreadable) is None
    delays = [retry_delay(1, "10", backoff_seconds=0.5, cap_seconds=60, rng=rng) for _ in range(200)]
    assert all(10 <= d <= 11 for d in delays) and len(set(delays)) > 100  # jittered: not all alike
    backoffs = [retry_delay(3, None, backoff_seconds=0.5, cap_seconds=60, rng=rng) for _ in range(200)]
    assert all(1.0 <= d <= 2.0 for d in backoffs) and len(set(backoffs)) > 100
    assert retry_delay(1, "86400", backoff_seconds=0.5, cap_seconds=10, rng=rng) == 10
