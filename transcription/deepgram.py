"""Deepgram's pre-recorded API (`POST /v1/listen`) through httpx.

Sends the raw audio with its content type and `Authorization: Token <key>`; keeps the
alternative with the HIGHEST confidence (the old app sorted ascending and took the first);
retries 429, 5xx, timeouts and connection errors; any other 4xx is final. A retry waits what
the answer's `Retry-After` asks (delay-seconds or an HTTP date), else exponential backoff; with
jitter either way (instances refused together do not come back together), never longer than
`max_retry_wait_seconds` (a job must not sit idle long enough for another instance to claim it).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from transcription.base import TranscriptionFailed, TranscriptResult, Word

log = logging.getLogger(__name__)


class DeepgramTranscriber:
    name = "deepgram"

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str = "https://api.deepgram.com",
        model: str = "nova-2",
        timeout_seconds: float = 30.0,
        attempts: int = 3,
        backoff_seconds: float = 0.5,
        max_retry_wait_seconds: float = 10.0,
    ) -> None:
        if not api_key:
            raise ValueError("DEEPGRAM_API_KEY is required when STT_ENGINE=deepgram")
        self.model = model
        self.attempts = attempts
        self.backoff_seconds = backoff_seconds
        self.max_retry_wait_seconds = max_retry_wait_seconds
        self.client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Token {api_key}"},
            timeout=httpx.Timeout(timeout_seconds, connect=min(timeout_seconds, 10.0)),
        )

    async def close(self) -> None:
        await self.client.aclose()

    async def transcribe(self, audio: bytes, mime_type: str) -> TranscriptResult:
        params = {"model": self.model, "punctuate": "true", "smart_format": "true"}
        last_problem = "no attempt made"
        for attempt in range(1, self.attempts + 1):
            retry_after: str | None = None
            try:
                response = await self.client.post(
                    "/v1/listen", params=params, content=audio, headers={"Content-Type": mime_type}
                )
            except httpx.TimeoutException:
                last_problem = "deepgram timed out"
            except httpx.TransportError as exc:
                last_problem = f"deepgram unreachable: {type(exc).__name__}"
            else:
                if response.status_code == 200:
                    return parse_response(response.json())
                if response.status_code != 429 and response.status_code < 500:
                    raise TranscriptionFailed(
                        f"deepgram refused the request: HTTP {response.status_code}", retryable=False
                    )
                last_problem = f"deepgram answered HTTP {response.status_code}"
                retry_after = response.headers.get("retry-after")
            if attempt < self.attempts:
                delay = retry_delay(attempt, retry_after, backoff_seconds=self.backoff_seconds,
                                    cap_seconds=self.max_retry_wait_seconds)
                log.warning("deepgram attempt failed", extra={
                    "attempt": attempt, "problem": last_problem, "retry_after": retry_after,
                    "retry_in_seconds": round(delay, 3)})
                await asyncio.sleep(delay)
            else:
                log.warning("deepgram attempt failed", extra={"attempt": attempt, "problem": last_problem})
        raise TranscriptionFailed(last_problem, retryable=True)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait per a Retry-After header (RFC 9110: delay-seconds or an HTTP date; a date
    in the past is 0), or None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" or no zone: HTTP dates are GMT
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def retry_delay(attempt: int, retry_after: str | None, *, backoff_seconds: float, cap_seconds: float,
                rng: random.Random | None = None) -> float:
    """How long to wait before try `attempt + 1`: the server's Retry-After plus up to 10 % (at
    most 1 s) of jitter, else `backoff_seconds * 2^(attempt-1)` jittered into its upper half;
    never more than `cap_seconds`."""
    uniform = (rng or random).uniform
    asked = parse_retry_after(retry_after)
    if asked is not None:
        delay = asked + uniform(0.0, min(1.0, 0.1 * asked))
    else:
        base = backoff_seconds * 2 ** (attempt - 1)
        delay = uniform(base / 2, base)
    return min(delay, cap_seconds)


def parse_response(body: dict[str, Any]) -> TranscriptResult:
    try:
        channel = body["results"]["channels"][0]
        alternatives = channel["alternatives"]
    except (KeyError, IndexError, TypeError):
        raise TranscriptionFailed("deepgram response has no alternatives", retryable=False) from None
    if not alternatives:
        raise TranscriptionFailed("deepgram response has no alternatives", retryable=False)
    best = max(alternatives, key=lambda alt: alt.get("confidence") or 0.0)
    words = [
        Word(
            word=w.get("punctuated_word") or w["word"],
            start=float(w["start"]),
            end=float(w["end"]),
            confidence=w.get("confidence"),
        )
        for w in best.get("words") or []
    ]
    languages = best.get("languages") or []
    language = channel.get("detected_language") or (languages[0] if languages else None)
    return TranscriptResult(
        text=(best.get("transcript") or "").strip(),
        engine="deepgram",
        confidence=best.get("confidence"),
        language=language,
        words=words,
    )
