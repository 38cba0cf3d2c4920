"""Transcription real-time factor (processing time / audio duration) on this machine.

    .venv/bin/python -m bench.transcription_rtf [--seconds 5 30 120] [--model bundled:tiny.en]

Speech comes from espeak-ng (a paragraph repeated to the wanted length), encoded as
webm/opus as browsers record it; each clip is transcribed through the same
`WhisperTranscriber` the app uses (model loaded once, like the app's lifespan).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import tempfile
import time
from pathlib import Path

from media.probe import probe_audio
from transcription.whisper import DEFAULT_MODEL, WhisperTranscriber

PARAGRAPH = (
    "Please call me back tomorrow morning about the meeting. "
    "I will send you the report before lunch on Friday. "
    "Do not forget to buy milk and bread on the way home. "
    "The project meeting has been moved to next Tuesday afternoon. "
)


def make_clip(folder: Path, seconds: float) -> Path:
    wav = folder / "paragraph.wav"
    if not wav.exists():
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "140", "-w", str(wav), PARAGRAPH * 4], check=True)
    out = folder / f"clip_{int(seconds)}s.webm"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-stream_loop", "-1", "-i", str(wav), "-t", str(seconds),
         "-ar", "48000", "-c:a", "libopus", "-b:a", "32k", str(out)],
        check=True,
    )
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, nargs="+", default=[5, 30, 120])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    args = parser.parse_args()
    started = time.perf_counter()
    engine = WhisperTranscriber(args.model)
    load_seconds = time.perf_counter() - started
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for seconds in args.seconds:
            clip = make_clip(Path(folder), seconds)
            duration = probe_audio(clip, max_seconds=10_000).duration_seconds
            audio = clip.read_bytes()
            t0 = time.perf_counter()
            result = await engine.transcribe(audio, "audio/webm")
            took = time.perf_counter() - t0
            results.append({"audio_s": round(duration, 2), "took_s": round(took, 2),
                            "rtf": round(took / duration, 3), "words": len(result.words)})
            print(f"{duration:7.1f} s of audio  {took:6.2f} s  RTF {took / duration:.3f}  ({len(result.words)} words)")
    print(json.dumps({"model": args.model, "load_s": round(load_seconds, 2), "clips": results}))


if __name__ == "__main__":
    asyncio.run(main())
