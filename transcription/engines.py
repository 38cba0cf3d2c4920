"""Choosing the engine named by STT_ENGINE."""

from __future__ import annotations

from transcription.base import DisabledTranscriber, Transcriber
from transcription.whisper import DecodeOptions, WhisperTranscriber

ENGINES = ("whisper", "deepgram", "none")


def make_transcriber(
    engine: str,
    *,
    whisper_model: str,
    whisper_options: DecodeOptions | None = None,
    deepgram_api_key: str | None,
    deepgram_url: str,
    deepgram_model: str,
    deepgram_timeout_seconds: float,
) -> Transcriber:
    if engine == "whisper":
        return WhisperTranscriber(whisper_model, options=whisper_options)
    if engine == "deepgram":
        from transcription.deepgram import DeepgramTranscriber

        return DeepgramTranscriber(
            api_key=deepgram_api_key or "",
            base_url=deepgram_url,
            model=deepgram_model,
            timeout_seconds=deepgram_timeout_seconds,
        )
    if engine == "none":
        return DisabledTranscriber()
    raise ValueError(f"STT_ENGINE must be one of {', '.join(ENGINES)}, not {engine!r}")
