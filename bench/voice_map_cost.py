"""What the voice map (waveform + Silero VAD speech segments) adds to an upload, in CPU time.

    .venv/bin/python -m bench.voice_map_cost [--seconds 5 30 120] [--runs 5]

The same espeak-ng webm/opus clips as bench.transcription_rtf; each is probed alone (what an
upload cost before) and probed with its map from the same decode (what it costs now). CPU time
of this process, median of the runs, after one warm-up that loads the VAD model.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.transcription_rtf import make_clip
from media.probe import probe_audio
from media.speech import probe_and_map


def cpu_ms(work: Callable[[], object], runs: int) -> float:
    took = []
    for _ in range(runs):
        started = time.process_time()
        work()
        took.append((time.process_time() - started) * 1000)
    return statistics.median(took)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, nargs="+", default=[5, 30, 120])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for seconds in args.seconds:
            clip = make_clip(Path(folder), seconds)
            probe_and_map(clip, max_seconds=10_000)  # warm-up: loads the VAD model once, like the first upload
            probe = cpu_ms(functools.partial(probe_audio, clip, max_seconds=10_000), args.runs)
            mapped = cpu_ms(functools.partial(probe_and_map, clip, max_seconds=10_000), args.runs)
            results.append({"audio_s": seconds, "probe_ms": round(probe), "probe_and_map_ms": round(mapped),
                            "map_ms": round(mapped - probe)})
            print(f"{seconds:7.1f} s of audio  probe {probe:6.0f} ms CPU  probe + map {mapped:6.0f} ms CPU  "
                  f"(map {mapped - probe:.0f} ms)")
    print(json.dumps({"clips": results}))


if __name__ == "__main__":
    main()
