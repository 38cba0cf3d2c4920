"""Local transcription with faster-whisper (CTranslate2): CUDA when available, int8 on CPU.

The model is loaded once (in the app's lifespan) and used from worker threads; CTranslate2
runs native code without the GIL, so the event loop stays responsive. The decoding options
(beam size, VAD filter, temperature fallback, initial prompt) come from the settings; their
defaults were chosen by word error rate and real-time factor (`make bench-stt`, README).
"""

from __future__ import annotations

import asyncio
import io
import logging
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transcription.base import TranscriptionFailed, TranscriptResult, Word
from transcription.models import BUNDLED_TINY_EN, resolve_model

log = logging.getLogger(__name__)

DEFAULT_MODEL = BUNDLED_TINY_EN
# faster-whisper's own fallback: decode again hotter when a result looks like a loop or noise.
FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


@dataclass(frozen=True)
class DecodeOptions:
    """How the model decodes; word timestamps are always on (search word hits need them)."""

    beam_size: int = 5
    vad_filter: bool = True
    temperature_fallback: bool = True
    initial_prompt: str | None = None

    def kwargs(self) -> dict[str, Any]:
        return {
            "beam_size": self.beam_size,
            "vad_filter": self.vad_filter,
            "temperature": list(FALLBACK_TEMPERATURES) if self.temperature_fallback else 0.0,
            "initial_prompt": self.initial_prompt or None,
            "word_timestamps": True,
        }

    def label(self) -> str:
        parts = [f"beam {self.beam_size}", "VAD" if self.vad_filter else "no VAD",
                 "fallback" if self.temperature_fallback else "T=0 only"]
        return ", ".join(parts + (["prompt"] if self.initial_prompt else []))


class WhisperTranscriber:
    name = "whisper"

    def __init__(self, model: str = DEFAULT_MODEL, *, cpu_threads: int = 0,
                 options: DecodeOptions | None = None) -> None:
        import ctranslate2
        from faster_whisper import WhisperModel

        cuda = ctranslate2.get_cuda_device_count() > 0
        path = resolve_model(model)
        self.model = WhisperModel(
            path,
            device="cuda" if cuda else "cpu",
            compute_type="float16" if cuda else "int8",
            cpu_threads=cpu_threads,
        )
        self.model_name = model
        self.options = options or DecodeOptions()
        self._lock = threading.Lock()  # one decode at a time per model: predictable latency
        log.info("whisper model loaded", extra={"model": path, "device": "cuda" if cuda else "cpu",
                                                "decoding": self.options.label()})

    def _transcribe(self, audio: bytes) -> TranscriptResult:
        with self._lock:
            try:
                segments, info = self.model.transcribe(io.BytesIO(audio), **self.options.kwargs())
                segments = list(segments)
            except Exception as exc:
                raise TranscriptionFailed(f"whisper failed: {exc}", retryable=False) from exc
        words = [
            Word(word=w.word.strip(), start=round(float(w.start), 3), end=round(float(w.end), 3),
                 confidence=round(float(w.probability), 4))
            for segment in segments for w in (segment.words or []) if w.word.strip()
        ]
        text = " ".join(segment.text.strip() for segment in segments).strip()
        if words:
            confidence = sum(w.confidence or 0 for w in words) / len(words)
        elif segments:
            confidence = math.exp(sum(s.avg_logprob for s in segments) / len(segments))
        else:
            confidence = None
        return TranscriptResult(
            text=text,
            engine=f"whisper:{Path(self.model_name.removeprefix('bundled:')).name}",
            confidence=round(confidence, 4) if confidence is not None else None,
            language=info.language,
            words=words,
        )

    async def transcribe(self, audio: bytes, mime_type: str) -> TranscriptResult:
        return await asyncio.to_thread(self._transcribe, audio)

    async def close(self) -> None:
        return None
