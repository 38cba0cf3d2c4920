"""Deepgram's pre-recorded API (`POST /v1/listen`) through httpx.

Sends the raw audio with its content type and `Authorization: Token <key>`; keeps the
alternative with the HIGHEST confidence (the old app sorted ascending and took the first);
retries 429, 5xx, timeouts and connection errors with exponential backoff; any other 4xx
is final.
"""

from __future__ import annotations

import asyncio
import logging
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
    ) -> None:
        if not api_key:
            raise ValueError("DEEPGRAM_API_KEY is required when STT_ENGINE=deepgram")
        self.model = model
        self.attempts = attempts
        self.backoff_seconds = backoff_seconds
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
            log.warning("deepgram attempt failed", extra={"attempt": attempt, "problem": last_problem})
            if attempt < self.attempts:
                await asyncio.sleep(self.backoff_seconds * 2 ** (attempt - 1))
        raise TranscriptionFailed(last_problem, retryable=True)


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
