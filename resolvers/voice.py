"""Use cases: upload a recording, retry a failed transcription."""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from pathlib import Path
from typing import Any

from media.probe import NotAudio, probe_audio
from resolvers.access import parse_id, visible_message
from resolvers.context import Context
from resolvers.errors import Conflict, InvalidInput, PayloadTooLarge, UnsupportedMediaType
from resolvers.messages import find_message, to_public_message
from schema.types import AudioFile, Message
from storage import archive
from storage.audio import AudioRecord
from storage.ids import new_id
from storage.messages import next_revision

CHUNK = 256 * 1024


def to_public_audio(record: AudioRecord) -> AudioFile:
    return AudioFile(
        id=record.id,  # type: ignore[arg-type]
        mime_type=record.mime_type,
        size_bytes=record.size_bytes,
        duration_seconds=record.duration_seconds,
    )


async def _spool(upload: Any, path: Path, limit: int) -> tuple[int, str]:
    """Copy the upload to `path` chunk by chunk; (size, sha256). PAYLOAD_TOO_LARGE past `limit`."""
    digest = hashlib.sha256()
    size = 0
    with path.open("wb") as out:
        while chunk := await upload.read(CHUNK):
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"audio must be at most {limit} bytes", field="file")
            digest.update(chunk)
            out.write(chunk)
    return size, digest.hexdigest()


async def upload_audio(ctx: Context, *, upload: Any) -> AudioFile:
    owner_id = ctx.require_viewer()
    await ctx.rate_limit("upload_audio", owner_id)
    services = ctx.services
    if upload is None or not hasattr(upload, "read"):
        raise InvalidInput("file must be a file upload (GraphQL multipart request)", field="file")
    with tempfile.TemporaryDirectory(prefix="chattergram-upload-") as folder:
        path = Path(folder) / "audio"
        size, sha256 = await _spool(upload, path, services.max_audio_bytes)
        if size == 0:
            raise UnsupportedMediaType("the file is empty", field="file")
        try:
            info = await asyncio.to_thread(probe_audio, path, max_seconds=services.max_audio_seconds)
        except NotAudio:
            raise UnsupportedMediaType(
                "the file is not audio in a supported format (webm/opus, ogg, mp3, wav, m4a, aac, flac)",
                field="file",
            ) from None
        if info.duration_seconds > services.max_audio_seconds:
            raise InvalidInput(
                f"audio must be at most {services.max_audio_seconds:g} seconds long", field="file"
            )
        record = await services.audio.save(
            audio_id=new_id(), owner_id=owner_id, path=path, mime_type=info.mime_type,
            duration_seconds=info.duration_seconds, sha256=sha256, size_bytes=size,
        )
    return to_public_audio(record)


async def retry_transcription(ctx: Context, *, message_id: str) -> Message:
    viewer_id = ctx.require_viewer()
    await ctx.rate_limit("retry_transcription", viewer_id)
    message_id = parse_id(message_id, field="messageId")
    message = visible_message(viewer_id, await find_message(ctx, message_id), field="messageId")
    if message.audio is None:
        raise InvalidInput("only voice messages are transcribed", field="messageId")
    if message.transcription_status != "FAILED":
        raise Conflict(
            f"transcription is {message.transcription_status}; only FAILED ones can be retried",
            field="messageId",
        )
    pending = next_revision(message, transcription_status="PENDING", transcript=None, text="")
    await archive.update_anywhere(ctx.services.messages, pending, queue_transcription=True)
    return to_public_message(pending)
