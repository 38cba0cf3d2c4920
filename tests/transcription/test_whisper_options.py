"""The local engine's decoding options, from the WHISPER_* settings to faster-whisper, with the
real bundled model (tiny.en) on espeak-ng speech and ffmpeg silence."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.settings import Settings
from api.startup import whisper_options
from bench.wer import word_error_rate
from tests.utils.audio import speak
from tests.utils.silence import ffmpeg, silence
from transcription.engines import make_transcriber
from transcription.whisper import FALLBACK_TEMPERATURES, DecodeOptions, WhisperTranscriber

SENTENCE = "I will send you the report before lunch on Friday."


@pytest.fixture(scope="module")
def engine() -> Iterator[WhisperTranscriber]:
    yield WhisperTranscriber()


def _settings(**values: Any) -> Settings:
    return Settings(_env_file=None, jwt_secret="s" * 32, **values)


def test_the_settings_defaults_are_the_engines_defaults() -> None:
    assert whisper_options(_settings()) == DecodeOptions()


def test_settings_reach_the_engine() -> None:
    settings = _settings(whisper_beam_size=2, whisper_vad_filter=True, whisper_temperature_fallback=False,
                         whisper_initial_prompt="Chat between friends.")
    engine = make_transcriber("whisper", whisper_model=settings.whisper_model,
                              whisper_options=whisper_options(settings), deepgram_api_key=None,
                              deepgram_url="", deepgram_model="", deepgram_timeout_seconds=1)
    assert isinstance(engine, WhisperTranscriber)
    assert engine.options == DecodeOptions(beam_size=2, vad_filter=True, temperature_fallback=False,
                                           initial_prompt="Chat between friends.")


def test_options_become_faster_whisper_arguments() -> None:
    assert DecodeOptions(beam_size=1, vad_filter=True, temperature_fallback=False, initial_prompt="Hi.").kwargs() == {
        "beam_size": 1, "vad_filter": True, "temperature": 0.0, "initial_prompt": "Hi.", "word_timestamps": True}
    fallback = DecodeOptions(initial_prompt="").kwargs()
    assert fallback["temperature"] == list(FALLBACK_TEMPERATURES) and fallback["initial_prompt"] is None


@pytest.mark.parametrize("options", [DecodeOptions(), DecodeOptions(beam_size=1, vad_filter=True,
                                                                    temperature_fallback=False,
                                                                    initial_prompt="Voice messages between friends.")])
async def test_every_option_keeps_words_with_timestamps_and_the_language(
    engine: WhisperTranscriber, tmp_path: Path, options: DecodeOptions
) -> None:
    engine.options = options
    result = await engine.transcribe(speak(SENTENCE, tmp_path, "webm").read_bytes(), "audio/webm")
    assert word_error_rate(SENTENCE, result.text) <= 0.25, result.text
    assert result.language == "en"
    assert result.words and all(0 <= w.start <= w.end for w in result.words)
    assert [w.start for w in result.words] == sorted(w.start for w in result.words)


async def test_the_vad_filter_reaches_the_model(engine: WhisperTranscriber, tmp_path: Path) -> None:
    """tiny.en invents a word on silence; with the VAD filter the silence is cut before decoding."""
    clip = silence(tmp_path, "webm", seconds=4).read_bytes()
    engine.options = DecodeOptions(vad_filter=False)
    assert (await engine.transcribe(clip, "audio/webm")).words
    engine.options = DecodeOptions(vad_filter=True)
    result = await engine.transcribe(clip, "audio/webm")
    assert result.text == "" and result.words == []


async def test_with_the_vad_filter_word_times_stay_those_of_the_recording(
    engine: WhisperTranscriber, tmp_path: Path
) -> None:
    """The filter decodes the speech alone; faster-whisper maps the times back, so word hits
    still point at the right place in a recording that starts with 2 s of silence."""
    padded = tmp_path / "padded.webm"
    ffmpeg("-i", str(speak(SENTENCE, tmp_path)), "-af", "adelay=2000,apad=pad_dur=2", "-ar", "48000",
           "-c:a", "libopus", "-b:a", "32k", str(padded))
    engine.options = DecodeOptions(vad_filter=False)
    plain = await engine.transcribe(padded.read_bytes(), "audio/webm")
    engine.options = DecodeOptions(vad_filter=True)
    filtered = await engine.transcribe(padded.read_bytes(), "audio/webm")
    assert word_error_rate(SENTENCE, filtered.text) <= 0.25, filtered.text
    assert 1.4 <= filtered.words[0].start <= 2.6, filtered.words[0]  # not from 0: mapped back
    assert filtered.words[0].start == pytest.approx(plain.words[0].start, abs=0.3)
    assert filtered.words[-1].end == pytest.approx(plain.words[-1].end, abs=0.3)
