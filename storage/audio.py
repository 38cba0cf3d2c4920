"""Voice recordings: the bytes in the GridFS bucket `audio`, facts about them in its
files' metadata (owner, MIME type, duration, size, sha256, the message that sent it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gridfs import AsyncGridFSBucket, NoFile
from pymongo.asynchronous.database import AsyncDatabase

BUCKET = "audio"
CHUNK_SIZE = 255 * 1024


@dataclass(frozen=True, slots=True)
class AudioRecord:
    id: str
    owner_id: str
    mime_type: str
    size_bytes: int
    duration_seconds: float
    sha256: str
    message_id: str | None

    @classmethod
    def from_file(cls, doc: dict[str, Any]) -> AudioRecord:
        meta = doc.get("metadata") or {}
        return cls(
            id=doc["_id"],
            owner_id=meta["owner_id"],
            mime_type=meta["mime_type"],
            size_bytes=int(doc["length"]),
            duration_seconds=float(meta["duration_seconds"]),
            sha256=meta["sha256"],
            message_id=meta.get("message_id"),
        )


class AudioStore:
    def __init__(self, database: AsyncDatabase[Any]) -> None:
        self.bucket = AsyncGridFSBucket(database, bucket_name=BUCKET, chunk_size_bytes=CHUNK_SIZE)
        self.files = database[f"{BUCKET}.files"]

    async def save(
        self, *, audio_id: str, owner_id: str, path: Path, mime_type: str, duration_seconds: float,
        sha256: str, size_bytes: int,
    ) -> AudioRecord:
        metadata = {
            "owner_id": owner_id,
            "mime_type": mime_type,
            "duration_seconds": duration_seconds,
            "sha256": sha256,
            "message_id": None,
            "uploaded_at": datetime.now(UTC),
        }
        with path.open("rb") as source:
            await self.bucket.upload_from_stream_with_id(audio_id, f"{audio_id}", source, metadata=metadata)
        return AudioRecord(
            id=audio_id, owner_id=owner_id, mime_type=mime_type, size_bytes=size_bytes,
            duration_seconds=duration_seconds, sha256=sha256, message_id=None,
        )

    async def get(self, audio_id: str) -> AudioRecord | None:
        doc = await self.files.find_one({"_id": audio_id})
        return AudioRecord.from_file(doc) if doc else None

    async def claim(self, *, audio_id: str, owner_id: str, message_id: str) -> AudioRecord | None:
        """Mark an unsent upload of `owner_id` as sent by `message_id` — atomically, so an
        upload is sent at most once. None when it is not the owner's or already sent."""
        doc = await self.files.find_one_and_update(
            {"_id": audio_id, "metadata.owner_id": owner_id, "metadata.message_id": None},
            {"$set": {"metadata.message_id": message_id}},
            return_document=True,
        )
        return AudioRecord.from_file(doc) if doc else None

    async def release(self, *, audio_id: str, message_id: str) -> None:
        """Undo a claim whose message could not be stored."""
        await self.files.update_one(
            {"_id": audio_id, "metadata.message_id": message_id}, {"$set": {"metadata.message_id": None}}
        )

    async def read_all(self, audio_id: str) -> bytes:
        stream = await self.bucket.open_download_stream(audio_id)
        return await stream.read()

    async def stream(self, audio_id: str, start: int, end: int, chunk: int = 64 * 1024) -> AsyncIterator[bytes]:
        """Bytes `start`..`end` inclusive."""
        try:
            grid_out = await self.bucket.open_download_stream(audio_id)
        except NoFile:
            return
        await grid_out.seek(start)
        remaining = end - start + 1
        while remaining > 0:
            data = await grid_out.read(min(chunk, remaining))
            if not data:
                break
            remaining -= len(data)
            yield data
