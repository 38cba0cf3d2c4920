"""Real speech for tests: espeak-ng speaks a sentence, ffmpeg converts it the way browsers
and phones record; and word error rate to judge transcripts."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.wer import edit_distance

FORMATS = {
    # name: (ffmpeg arguments, file suffix, declared content type)
    "webm": (["-ar", "48000", "-c:a", "libopus", "-b:a", "32k"], ".webm", "audio/webm;codecs=opus"),
    "ogg": (["-ar", "48000", "-c:a", "libopus"], ".ogg", "audio/ogg"),
    "mp3": (["-ar", "44100", "-b:a", "64k"], ".mp3", "audio/mpeg"),
    "wav": ([], ".wav", "audio/wav"),
    "m4a": (["-c:a", "aac", "-b:a", "64k"], ".m4a", "audio/mp4"),
    "aac": (["-c:a", "aac", "-b:a", "64k"], ".aac", "audio/aac"),  # raw ADTS
    "flac": (["-c:a", "flac"], ".flac", "audio/flac"),
}

UPLOAD = """mutation Upload($file: Upload!) {
  uploadAudio(file: $file) { id mimeType sizeBytes durationSeconds url }
}"""


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed: `make test` installs it (apt-get install espeak-ng ffmpeg)")
    return path


def speak(sentence: str, folder: Path, fmt: str = "wav") -> Path:
    """`sentence` spoken by espeak-ng (US English, 140 wpm), converted to `fmt`."""
    folder.mkdir(parents=True, exist_ok=True)
    wav = folder / f"{abs(hash(sentence))}.wav"
    if not wav.exists():
        subprocess.run([_require("espeak-ng"), "-v", "en-us", "-s", "140", "-w", str(wav), sentence],
                       check=True, capture_output=True, timeout=60)
    args, suffix, _ = FORMATS[fmt]
    if fmt == "wav":
        return wav
    out = wav.with_suffix(suffix)
    if not out.exists():
        subprocess.run([_require("ffmpeg"), "-loglevel", "error", "-y", "-i", str(wav), *args, str(out)],
                       check=True, capture_output=True, timeout=120)
    return out


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, by edit distance."""
    ref = words(reference)
    return edit_distance(ref, words(hypothesis)) / max(len(ref), 1)


async def upload(http: httpx.AsyncClient, url: str, token: str, content: bytes, filename: str,
                 content_type: str, headers: dict[str, str] | None = None, query: str = UPLOAD) -> dict[str, Any]:
    """The GraphQL multipart request spec, as Apollo/urql upload clients send it."""
    response = await http.post(
        url,
        data={"operations": json.dumps({"query": query, "variables": {"file": None}}),
              "map": json.dumps({"0": ["variables.file"]})},
        files={"0": (filename, content, content_type)},
        headers={**({"Authorization": f"Bearer {token}"} if token else {}), **(headers or {})},
    )
    return {"status": response.status_code, **response.json()}
