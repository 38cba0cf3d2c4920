"""The voice map (waveform and speech segments) from real recordings in every accepted format:
espeak-ng speech and ffmpeg silence, decoded by the same probe uploads go through."""

from __future__ import annotations

import itertools
import struct
from pathlib import Path

import numpy as np
import pytest

from media.probe import CONTAINER_MIME_TYPES, probe_audio
from media.speech import WAVEFORM_POINTS, VoiceMap, map_voice, probe_and_map
from tests.utils.audio import FORMATS, speak
from tests.utils.silence import silence, speech_with_pause

SENTENCE = "Please call me back tomorrow morning about the meeting."


def _map(path: Path) -> tuple[float, VoiceMap]:
    info, voice_map = probe_and_map(path, max_seconds=300)
    return info.duration_seconds, voice_map


def _assert_inside(segments: tuple[tuple[float, float], ...], duration: float) -> None:
    assert all(0 <= start < end <= duration for start, end in segments), (segments, duration)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(segments)), segments  # in order, apart


def test_the_formats_tested_are_every_accepted_container(tmp_path: Path) -> None:
    mime_types = {probe_audio(speak("Hello.", tmp_path, fmt), max_seconds=300).mime_type for fmt in FORMATS}
    assert mime_types == set(CONTAINER_MIME_TYPES.values())


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_speech_has_peaks_and_a_segment_inside_the_recording(tmp_path: Path, fmt: str) -> None:
    duration, voice_map = _map(speak(SENTENCE, tmp_path, fmt))
    assert len(voice_map.waveform) == WAVEFORM_POINTS
    assert all(0 <= peak <= 1 for peak in voice_map.waveform)
    assert max(voice_map.waveform) == 1.0  # espeak-ng speaks loud: nothing to boost, the loudest is 1
    assert sum(peak > 0.1 for peak in voice_map.waveform) > WAVEFORM_POINTS // 2
    assert voice_map.speech_segments
    _assert_inside(voice_map.speech_segments, duration)
    spoken = sum(end - start for start, end in voice_map.speech_segments)
    assert spoken > duration / 2  # the sentence fills the clip


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_silence_is_flat_and_has_no_speech(tmp_path: Path, fmt: str) -> None:
    duration, voice_map = _map(silence(tmp_path, fmt, seconds=3))
    assert duration == pytest.approx(3, abs=0.1)
    assert len(voice_map.waveform) == WAVEFORM_POINTS
    assert all(peak <= 0.01 for peak in voice_map.waveform), voice_map.waveform
    assert voice_map.speech_segments == ()


def test_a_long_pause_splits_the_speech_and_is_left_out(tmp_path: Path) -> None:
    clip, pause_at = speech_with_pause(tmp_path, "Hello there, this is the first part.", "And here is the rest.")
    duration, voice_map = _map(clip)
    _assert_inside(voice_map.speech_segments, duration)
    assert len(voice_map.speech_segments) == 2, voice_map.speech_segments
    (_, end), (start, _) = voice_map.speech_segments
    assert end <= pause_at + 0.5 and start >= pause_at + 2.5  # most of the 3 s pause is skippable
    # The waveform shows the pause: the slices well inside it are flat.
    pause = voice_map.waveform[int((pause_at + 0.5) / duration * 64):int((pause_at + 2.5) / duration * 64)]
    assert pause and max(pause) == 0


def test_a_quiet_voice_is_boosted_but_hiss_is_not(tmp_path: Path) -> None:
    loud = map_voice(np.array([0.0, 0.02, -0.04, 0.01] * 4000, dtype=np.float32), duration_seconds=1)
    assert max(loud.waveform) == pytest.approx(0.8, abs=0.01)  # 0.04 boosted 20x, not to 1
    hiss = map_voice(np.full(16_000, 0.0005, dtype=np.float32), duration_seconds=1)
    assert max(hiss.waveform) == 0.01


def test_float_samples_that_are_not_numbers_draw_as_silence_or_full_scale(tmp_path: Path) -> None:
    """A float WAV may carry NaN and infinities: the map stays finite JSON numbers in 0-1."""
    samples = np.zeros(16_000, dtype="<f4")
    samples[:4000] = np.nan
    samples[8000:8010] = np.inf
    wav = tmp_path / "nan.wav"
    data = samples.tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, 16_000, 64_000, 4, 32)  # IEEE float, mono, 16 kHz
    wav.write_bytes(b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data)) + b"WAVE"
                    + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data)
    duration, voice_map = _map(wav)
    assert duration == pytest.approx(1)
    assert all(np.isfinite(peak) and 0 <= peak <= 1 for peak in voice_map.waveform)
    assert voice_map.waveform[0] == 0 and max(voice_map.waveform) == 1
    _assert_inside(voice_map.speech_segments, duration)


def test_a_clip_shorter_than_the_waveform_still_has_every_point() -> None:
    voice_map = map_voice(np.array([0.5, -1.0, 0.25], dtype=np.float32), duration_seconds=0.001)
    assert len(voice_map.waveform) == WAVEFORM_POINTS and max(voice_map.waveform) == 1
    assert voice_map.speech_segments == ()
