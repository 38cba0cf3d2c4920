"""What a voice recording looks like and where its speech is, for the player: a waveform of
peaks to draw, and the spans a voice-activity detector hears speech in (so it can skip the
silence between them). Computed once at upload from the frames the probe decodes anyway;
the detector is the Silero VAD that faster-whisper ships (ONNX, run on CPU by onnxruntime; its
session opens, and is kept, at a process's first upload, in that upload's worker thread)."""

from __future__ import annotations

import functools
import itertools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

from media.probe import AudioInfo, probe_audio

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000  # what the VAD model takes; plenty for a waveform's peaks
WAVEFORM_POINTS = 64
# Peaks are scaled so the loudest is 1, but boosted at most 1/QUIET_FLOOR times (26 dB): a
# quiet voice still draws, while a silent recording's hiss stays flat instead of filling the bubble.
QUIET_FLOOR = 0.05
# Pauses shorter than this are part of speaking; longer ones are what "skip silence" skips.
VAD_SETTINGS = {"threshold": 0.5, "min_speech_duration_ms": 100, "min_silence_duration_ms": 600, "speech_pad_ms": 150}


@dataclass(frozen=True, slots=True)
class VoiceMap:
    waveform: tuple[float, ...] = ()  # WAVEFORM_POINTS peaks, 0-1, two decimals
    speech_segments: tuple[tuple[float, float], ...] = ()  # (start, end) seconds, in order


class SampleCollector:
    """Receives decoded frames and keeps them as 16 kHz mono float32 samples. A frame it cannot
    take stops the collecting (the recording is still accepted, with an empty map)."""

    BATCH_SECONDS = 5  # resampled in batches: one call per 20 ms frame costs as much as the decode

    def __init__(self) -> None:
        self._resampler: av.AudioResampler | None = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        self._fifo = av.AudioFifo()
        self._chunks: list[np.ndarray] = []

    def __call__(self, frame: av.AudioFrame) -> None:
        if self._resampler is None:
            return
        try:
            frame.pts = None  # the FIFO checks timestamps are contiguous; gaps do not matter here
            self._fifo.write(frame)
            if self._fifo.samples >= self.BATCH_SECONDS * frame.sample_rate:
                self._resample(self._fifo.read())
        except (av.error.FFmpegError, ValueError) as exc:
            log.warning("voice map: cannot resample the recording", extra={"error": str(exc)})
            self._resampler, self._chunks = None, []

    def _resample(self, batch: av.AudioFrame | None) -> None:
        assert self._resampler is not None
        self._chunks.extend(out.to_ndarray().reshape(-1) for out in self._resampler.resample(batch))

    def samples(self) -> np.ndarray:
        if self._resampler is not None:
            if self._fifo.samples:
                self._resample(self._fifo.read())
            self._resample(None)  # flush what the resampler holds back
            self._resampler = None
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype=np.float32)


def waveform(samples: np.ndarray, points: int = WAVEFORM_POINTS) -> tuple[float, ...]:
    """The peak of each of `points` equal slices, scaled to 0-1; () for no samples."""
    if samples.size == 0:
        return ()
    edges = np.linspace(0, samples.size, points + 1).astype(np.int64)
    magnitude = np.abs(samples)
    # A slice shorter than one sample (a clip under `points` samples) takes the sample at its start.
    peaks = np.array([magnitude[a:max(b, a + 1)].max() for a, b in itertools.pairwise(edges)])
    peaks = np.minimum(peaks / max(float(peaks.max()), QUIET_FLOOR), 1.0)
    return tuple(round(float(p), 2) for p in peaks)


def speech_segments(samples: np.ndarray, *, duration_seconds: float) -> tuple[tuple[float, float], ...]:
    """Where the VAD hears speech, in seconds (two decimals), within [0, duration_seconds]."""
    if samples.size == 0:
        return ()
    detect, options = _vad()
    spans = detect(samples, options, sampling_rate=SAMPLE_RATE)
    segments = []
    for span in spans:
        start = round(span["start"] / SAMPLE_RATE, 2)
        end = min(round(span["end"] / SAMPLE_RATE, 2), duration_seconds)
        if end > start:
            segments.append((start, end))
    return tuple(segments)


@functools.cache
def _vad() -> tuple[Any, Any]:
    """faster-whisper's speech detector and its options, imported at the first upload: the
    package costs every process start 0.2 s (an app on another STT engine, the CLI's other
    commands) and most never map a recording."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps  # type: ignore[import-untyped]

    return get_speech_timestamps, VadOptions(**VAD_SETTINGS)


def map_voice(samples: np.ndarray, *, duration_seconds: float) -> VoiceMap:
    # Float PCM may carry NaN or infinities: they would poison every peak (and the JSON).
    samples = np.clip(np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0).astype(np.float32)
    return VoiceMap(waveform(samples), speech_segments(samples, duration_seconds=duration_seconds))


def probe_and_map(path: Path, *, max_seconds: float) -> tuple[AudioInfo, VoiceMap]:
    """`probe_audio` and the voice map from the same decode (blocking: run it in a thread);
    raises NotAudio. A recording too long to accept gets no map."""
    collector = SampleCollector()
    info = probe_audio(path, max_seconds=max_seconds, on_frame=collector)
    if info.duration_seconds > max_seconds:
        return info, VoiceMap()
    return info, map_voice(collector.samples(), duration_seconds=info.duration_seconds)
