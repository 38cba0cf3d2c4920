"""Silent recordings for tests, and speech with a long pause in it: ffmpeg's null source,
converted like `tests.utils.audio.speak`."""

from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path

from tests.utils.audio import FORMATS, speak


def ffmpeg(*args: str) -> None:
    tool = shutil.which("ffmpeg")
    assert tool, "ffmpeg is not installed: `make test` installs it"
    subprocess.run([tool, "-loglevel", "error", "-y", *args], check=True, capture_output=True, timeout=60)


def silence(folder: Path, fmt: str = "wav", seconds: float = 3.0) -> Path:
    """`seconds` of digital silence (48 kHz mono), as `fmt`."""
    folder.mkdir(parents=True, exist_ok=True)
    args, suffix, _ = FORMATS[fmt]
    out = folder / f"silence-{seconds:g}s{suffix}"
    ffmpeg("-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono", "-t", f"{seconds}", *args, str(out))
    return out


def speech_with_pause(folder: Path, first: str, second: str, pause_seconds: float = 3.0) -> tuple[Path, float]:
    """A WAV of `first`, `pause_seconds` of silence, then `second` (espeak-ng); and where the
    pause starts, in seconds (espeak-ng's own trailing quiet comes before it)."""
    before, after = speak(first, folder), speak(second, folder)
    out = folder / f"pause-{abs(hash((first, second, pause_seconds)))}.wav"
    ffmpeg("-i", str(before), "-f", "lavfi", "-t", f"{pause_seconds}", "-i", "anullsrc=r=22050:cl=mono",
            "-i", str(after), "-filter_complex", "concat=n=3:v=0:a=1", str(out))
    with wave.open(str(before)) as clip:
        pause_at = clip.getnframes() / clip.getframerate()
    return out, pause_at
