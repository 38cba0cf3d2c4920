"""Browsers' MediaRecorder writes webm as a live stream: no duration in the header and no
cues (the seek index), because it does not know them while recording. Players then seek only
within what they have downloaded. Remuxing the same packets into a file gives both."""

from __future__ import annotations

from pathlib import Path

import av


def remux_seekable(source: Path, target: Path) -> None:
    """Copy `source`'s audio packets into a WebM at `target` with duration and cues; nothing
    is re-encoded. Blocking: run it in a thread. Raises av.error.FFmpegError."""
    with av.open(str(source), mode="r") as reader, av.open(str(target), mode="w", format="webm") as writer:
        audio_in = reader.streams.audio[0]
        audio_out = writer.add_stream_from_template(audio_in)
        for packet in reader.demux(audio_in):
            if packet.dts is None:  # the demuxer's end-of-stream marker
                continue
            packet.stream = audio_out
            writer.mux(packet)
