"""GET /media/{audioId}: stream a voice recording from GridFS to a holder of a signed URL.

Supports single-range requests (206 with Content-Range), HEAD, and ETag (the sha256) with
If-None-Match. A missing, bad or expired signature is 403; an unknown recording, or one the
viewer may no longer play (they left its conversation), 404.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from resolvers.runtime import Runtime
from resolvers.voice import playable_audio

# [0-9], not \d: HTTP's digits are ASCII and \d takes any script's.
_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)")


def _position(digits: str, size: int) -> int:
    """The number `digits` spell, capped at `size`: int() refuses over 4,300 digits."""
    significant = digits.lstrip("0")
    if len(significant) > len(str(size)):
        return size
    return min(int(significant or "0"), size)


def parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """(start, end) inclusive; None for no/unsupported Range; "unsatisfiable"."""
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if not match:
        return None  # multiple ranges or another unit: serve the whole file
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix: the last N bytes
        length = _position(last, size)
        if length == 0:
            return "unsatisfiable"
        return max(size - length, 0), size - 1
    start = _position(first, size)
    end = min(_position(last, size), size - 1) if last else size - 1
    if start >= size or start > end:
        return "unsatisfiable"
    return start, end


async def media_endpoint(request: Request) -> Response:
    runtime: Runtime = request.state.runtime
    audio_id = request.path_params["audio_id"]
    params = request.query_params
    conversation_id, viewer_id = params.get("c", ""), params.get("u", "")
    if not runtime.media_signer.verify(audio_id, conversation_id, viewer_id, params.get("exp"), params.get("sig")):
        return Response("forbidden", status_code=403, media_type="text/plain")
    record = await playable_audio(runtime, audio_id, conversation_id=conversation_id, viewer_id=viewer_id)
    if record is None:
        return Response("not found", status_code=404, media_type="text/plain")
    etag = f'"{record.sha256}"'
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": etag,
        "Cache-Control": "private, max-age=3600",
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    byte_range = parse_range(request.headers.get("range"), record.size_bytes)
    if byte_range == "unsatisfiable":
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{record.size_bytes}"})
    status = 200
    start, end = 0, record.size_bytes - 1
    if isinstance(byte_range, tuple):
        start, end = byte_range
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{record.size_bytes}"
    headers["Content-Length"] = str(end - start + 1)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=record.mime_type)
    return StreamingResponse(
        runtime.audio.stream(audio_id, start, end), status_code=status, headers=headers, media_type=record.mime_type
    )
