"""Silent recordings for tests: ffmpeg's null source, converted like `tests.utils.audio.speak`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.utils.audio import FORMATS


def silence(folder: Path, fmt: str = "wav", seconds: float = 3.0) -> Path:
    """`seconds` of digital silence (48 kHz mono), as `fmt`."""
    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg, "ffmpeg is not installed: `make test` installs it"
    folder.mkdir(parents=True, exist_ok=True)
    args, suffix, _ = FORMATS[fmt]
    out = folder / f"silence-{seconds:g}s{suffix}"
    subprocess.run([ffmpeg, "-loglevel", "error", "-y", "-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono",
                    "-t", f"{seconds}", *args, str(out)], check=True, capture_output=True, timeout=60)
    return out
