"""The engine protocol and what every engine returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Word:
    word: str
    start: float
    end: float
    confidence: float | None = None


@dataclass(frozen=True, slots=True)
class TranscriptResult:
    text: str
    engine: str
    confidence: float | None = None
    language: str | None = None
    words: list[Word] = field(default_factory=list)


class TranscriptionFailed(Exception):
    """The engine could not transcribe; `retryable` says whether trying later may help."""

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class Transcriber(Protocol):
    name: str

    async def transcribe(self, audio: bytes, mime_type: str) -> TranscriptResult: ...

    async def close(self) -> None: ...


class DisabledTranscriber:
    """STT_ENGINE=none: voice messages are stored and playable, never transcribed."""

    name = "none"

    async def transcribe(self, audio: bytes, mime_type: str) -> TranscriptResult:
        raise TranscriptionFailed("transcription disabled", retryable=False)

    async def close(self) -> None:
        return None
