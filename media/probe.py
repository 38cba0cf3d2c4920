"""What an uploaded file really is: decoded with PyAV (FFmpeg), whatever name or type the
client claimed. Browsers' MediaRecorder webm has no duration in its header, so the
duration is measured by decoding."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av

# FFmpeg demuxer name -> the MIME type we store and serve.
CONTAINER_MIME_TYPES = {
    "matroska,webm": "audio/webm",
    "ogg": "audio/ogg",
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "mov,mp4,m4a,3gp,3g2,mj2": "audio/mp4",
    "aac": "audio/aac",
    "flac": "audio/flac",
}


class NotAudio(Exception):
    """The content does not decode as a supported audio format."""


@dataclass(frozen=True, slots=True)
class AudioInfo:
    mime_type: str
    duration_seconds: float
    codec: str
    declares_duration: bool = True  # False for a live recording (MediaRecorder's webm)


def probe_audio(
    path: Path, *, max_seconds: float, on_frame: Callable[[av.AudioFrame], None] | None = None
) -> AudioInfo:
    """Decode `path` fully (stopping past `max_seconds`), handing each frame to `on_frame`;
    raises NotAudio."""
    try:
        with av.open(str(path), mode="r") as container:
            mime_type = CONTAINER_MIME_TYPES.get(container.format.name)
            if mime_type is None or not container.streams.audio:
                raise NotAudio(f"unsupported container {container.format.name!r}")
            stream = container.streams.audio[0]
            codec = stream.codec_context.name
            declares_duration = container.duration is not None
            seconds = 0.0
            frames = 0
            for frame in container.decode(stream):
                frames += 1
                if on_frame is not None:
                    on_frame(frame)
                if frame.sample_rate:
                    seconds += frame.samples / frame.sample_rate
                if seconds > max_seconds + 1:
                    break
    except NotAudio:
        raise
    except (av.error.FFmpegError, ValueError, IndexError, UnicodeDecodeError) as exc:
        raise NotAudio(str(exc)) from None
    if frames == 0 or seconds <= 0:
        raise NotAudio("no audio samples")
    return AudioInfo(mime_type=mime_type, duration_seconds=round(seconds, 3), codec=codec,
                     declares_duration=declares_duration)
