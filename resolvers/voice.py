"""Use cases: upload a recording, retry a failed transcription."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import tempfile
from pathlib import Path
from typing import Any

import av

from media.probe import AudioInfo, NotAudio
from media.seekable import remux_seekable
from media.speech import probe_and_map
from resolvers.access import parse_id, visible_message
from resolvers.context import Context
from resolvers.errors import Conflict, InvalidInput, PayloadTooLarge, UnsupportedMediaType
from resolvers.runtime import Runtime
from storage.audio import AudioRecord
from storage.ids import is_valid_id, new_id
from storage.records import StoredMessage, next_revision

log = logging.getLogger(__name__)

CHUNK = 256 * 1024


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


async def upload_audio(ctx: Context, *, upload: Any) -> AudioRecord:
    owner_id = ctx.require_viewer()
    await ctx.rate_limit("upload_audio", owner_id)
    runtime = ctx.runtime
    if upload is None or not hasattr(upload, "read"):
        raise InvalidInput("file must be a file upload (GraphQL multipart request)", field="file")
    with tempfile.TemporaryDirectory(prefix="chattergram-upload-") as folder:
        path = Path(folder) / "audio"
        size, sha256 = await _spool(upload, path, runtime.max_audio_bytes)
        if size == 0:
            raise UnsupportedMediaType("the file is empty", field="file")
        try:
            # One decode, off the event loop: what the file is, and the player's voice map.
            info, voice_map = await asyncio.to_thread(probe_and_map, path, max_seconds=runtime.max_audio_seconds)
        except NotAudio:
            raise UnsupportedMediaType(
                "the file is not audio in a supported format (webm/opus, ogg, mp3, wav, m4a, aac, flac)",
                field="file",
            ) from None
        if info.duration_seconds > runtime.max_audio_seconds:
            raise InvalidInput(
                f"audio must be at most {runtime.max_audio_seconds:g} seconds long", field="file"
            )
        if info.mime_type == "audio/webm" and not info.declares_duration:
            path, size, sha256 = await asyncio.to_thread(_seekable, path, info, (size, sha256))
        record = await runtime.audio.save(
            audio_id=new_id(), owner_id=owner_id, path=path, mime_type=info.mime_type,
            duration_seconds=info.duration_seconds, sha256=sha256, size_bytes=size,
            waveform=voice_map.waveform, speech_segments=voice_map.speech_segments,
        )
    return record


def _seekable(path: Path, info: AudioInfo, spooled: tuple[int, str]) -> tuple[Path, int, str]:
    """A live recording remuxed with duration and cues, so players seek anywhere: (path, size,
    sha256) of what to store. Should the remux fail, the original (it plays, seeks less well)."""
    target = path.with_suffix(".webm")
    try:
        remux_seekable(path, target)
    except (av.error.FFmpegError, ValueError) as exc:
        log.warning("remux failed; storing the recording as uploaded", extra={"error": str(exc), "codec": info.codec})
        return (path, *spooled)
    digest = hashlib.sha256()
    with target.open("rb") as stored:
        while chunk := stored.read(CHUNK):
            digest.update(chunk)
    return target, target.stat().st_size, digest.hexdigest()


async def retry_transcription(ctx: Context, *, message_id: str) -> StoredMessage:
    viewer_id = ctx.require_viewer()
    await ctx.rate_limit("retry_transcription", viewer_id)
    message_id = parse_id(message_id, field="messageId")
    message = await visible_message(ctx, viewer_id, await ctx.runtime.messages.find(message_id), field="messageId")
    if message.audio is None:
        raise InvalidInput("only voice messages are transcribed", field="messageId")
    if message.transcription_status != "FAILED":
        raise Conflict(
            f"transcription is {message.transcription_status}; only FAILED ones can be retried",
            field="messageId",
        )
    pending = next_revision(message, transcription_status="PENDING", transcript=None, text="")
    if not await ctx.runtime.messages.update(pending, queue_transcription=True):
        raise Conflict("the message changed meanwhile: try again", field="messageId")
    return pending


async def playable_audio(
    runtime: Runtime, audio_id: str, *, conversation_id: str, viewer_id: str
) -> AudioRecord | None:
    """The recording if the viewer a signed URL was made for may play it now: a member of the
    conversation it was sent in, or its uploader (a URL made before it was sent). None otherwise."""
    if not is_valid_id(audio_id):
        return None
    record = await runtime.audio.get(audio_id)
    if record is None:
        return None
    if not conversation_id:
        return record if record.owner_id == viewer_id else None
    if not is_valid_id(conversation_id):
        return None
    conversation = await runtime.conversations.get(conversation_id)
    if conversation is None or conversation.member(viewer_id) is None or record.message_id is None:
        return None
    return record
