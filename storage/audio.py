"""Voice recordings: the bytes in the GridFS bucket `audio`, facts about them in its
files' metadata (owner, MIME type, duration, size, sha256, the message that sent it, and
the player's waveform and speech segments; recordings stored before those had neither)."""

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
    waveform: tuple[float, ...] = ()  # 0-1 peaks evenly spaced over the recording
    speech_segments: tuple[tuple[float, float], ...] = ()  # (start, end) seconds of speech

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
            waveform=tuple(meta.get("waveform") or ()),
            speech_segments=tuple((start, end) for start, end in meta.get("speech_segments") or ()),
        )


class AudioStore:
    def __init__(self, database: AsyncDatabase[Any]) -> None:
        self.bucket = AsyncGridFSBucket(database, bucket_name=BUCKET, chunk_size_bytes=CHUNK_SIZE)
        self.files = database[f"{BUCKET}.files"]
        self.chunks = database[f"{BUCKET}.chunks"]

    async def create_indexes(self) -> None:
        """What the upload sweeper looks for: unsent uploads by age, claims not yet checked."""
        await self.files.create_index([("metadata.message_id", 1), ("metadata.uploaded_at", 1)],
                                      name="unsent_by_age")
        await self.files.create_index([("metadata.claim_unchecked", 1), ("metadata.message_id", 1)],
                                      name="unchecked_claims", sparse=True)

    async def save(
        self, *, audio_id: str, owner_id: str, path: Path, mime_type: str, duration_seconds: float,
        sha256: str, size_bytes: int, waveform: tuple[float, ...] = (),
        speech_segments: tuple[tuple[float, float], ...] = (),
    ) -> AudioRecord:
        metadata = {
            "owner_id": owner_id,
            "mime_type": mime_type,
            "duration_seconds": duration_seconds,
            "sha256": sha256,
            "message_id": None,
            "uploaded_at": datetime.now(UTC),
            "waveform": list(waveform),
            "speech_segments": [list(segment) for segment in speech_segments],
        }
        with path.open("rb") as source:
            await self.bucket.upload_from_stream_with_id(audio_id, f"{audio_id}", source, metadata=metadata)
        return AudioRecord(
            id=audio_id, owner_id=owner_id, mime_type=mime_type, size_bytes=size_bytes,
            duration_seconds=duration_seconds, sha256=sha256, message_id=None, waveform=waveform,
            speech_segments=speech_segments,
        )

    async def get(self, audio_id: str) -> AudioRecord | None:
        doc = await self.files.find_one({"_id": audio_id})
        return AudioRecord.from_file(doc) if doc else None

    async def claim(self, *, audio_id: str, owner_id: str, message_id: str) -> AudioRecord | None:
        """Mark an unsent upload of `owner_id` as sent by `message_id` — atomically, so an
        upload is sent at most once (a retry of the same message claims it again). None when it
        is not the owner's or another message sent it."""
        doc = await self.files.find_one_and_update(
            {"_id": audio_id, "metadata.owner_id": owner_id, "metadata.message_id": {"$in": [None, message_id]}},
            # Unchecked until the sweeper has seen its message: a send that crashed leaves none.
            {"$set": {"metadata.message_id": message_id, "metadata.claim_unchecked": True}},
            return_document=True,
        )
        return AudioRecord.from_file(doc) if doc else None

    async def release(self, *, audio_id: str, message_id: str) -> bool:
        """Undo a claim whose message could not be stored (never one whose message was seen)."""
        result = await self.files.update_one(
            {"_id": audio_id, "metadata.message_id": message_id, "metadata.claim_unchecked": True},
            {"$set": {"metadata.message_id": None}, "$unset": {"metadata.claim_unchecked": ""}},
        )
        return result.modified_count == 1

    async def confirm_claim(self, *, audio_id: str, message_id: str) -> None:
        """The claiming message exists: the claim is final."""
        await self.files.update_one({"_id": audio_id, "metadata.message_id": message_id},
                                    {"$unset": {"metadata.claim_unchecked": ""}})

    async def unchecked_claims(self, *, claimed_before: str, limit: int) -> list[tuple[str, str]]:
        """(audio id, message id) of claims by message ids older than `claimed_before` whose
        message nobody has seen yet."""
        cursor = self.files.find(
            {"metadata.claim_unchecked": True, "metadata.message_id": {"$ne": None, "$lt": claimed_before}},
            {"metadata.message_id": 1}, limit=limit,
        )
        return [(doc["_id"], doc["metadata"]["message_id"]) async for doc in cursor]

    async def unsent_before(self, uploaded_before: datetime, *, limit: int) -> list[str]:
        cursor = self.files.find(
            {"metadata.message_id": None, "metadata.uploaded_at": {"$lt": uploaded_before}}, {"_id": 1}, limit=limit
        )
        return [doc["_id"] async for doc in cursor]

    async def delete_unsent(self, audio_id: str, *, uploaded_before: datetime) -> bool:
        """Delete an upload if it is still unsent and old: the files document goes first, in one
        conditional step, so a send claiming it meanwhile either wins or finds nothing."""
        doc = await self.files.find_one_and_delete(
            {"_id": audio_id, "metadata.message_id": None, "metadata.uploaded_at": {"$lt": uploaded_before}},
            projection={"_id": 1},
        )
        if doc is None:
            return False
        await self.chunks.delete_many({"files_id": audio_id})
        return True

    async def delete_sent(self, *, audio_id: str, message_id: str) -> None:
        """Delete the recording `message_id` sent (its message is being deleted): the files
        document first, so /media answers 404 at once; then its chunks (idempotent, a retry
        finishes what a crash left)."""
        await self.files.delete_one({"_id": audio_id, "metadata.message_id": message_id})
        if await self.files.find_one({"_id": audio_id}, {"_id": 1}) is None:
            await self.chunks.delete_many({"files_id": audio_id})

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
