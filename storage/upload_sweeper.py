"""Upkeep of voice uploads: recordings never sent are deleted after a time to live, and a
claim left by a send that died before its message was written is given back.

Every instance sweeps; each step is one conditional write, so sweeps and sends never clash.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta

from storage.audio import AudioStore
from storage.background import cancel_and_wait, run_every
from storage.ids import first_id_at
from storage.messages import MessageStore

log = logging.getLogger(__name__)

BATCH = 500


class UploadSweeper:
    def __init__(self, audio: AudioStore, messages: MessageStore, *, ttl_seconds: float,
                 claim_grace_seconds: float, interval_seconds: float) -> None:
        self.audio = audio
        self.messages = messages
        self.ttl_seconds = ttl_seconds
        self.claim_grace_seconds = claim_grace_seconds
        self.interval_seconds = interval_seconds
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(
            run_every(self.interval_seconds, self.sweep, what="upload sweep"), name="upload-sweeper"
        )

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait([self._task])

    async def sweep(self) -> tuple[int, int]:
        """(claims given back, uploads deleted). Claims first: an upload given back that is
        already past its time to live goes in the same sweep."""
        released = await self.check_claims()
        deleted = await self.delete_expired()
        if released or deleted:
            log.info("swept uploads", extra={"claims_released": released, "uploads_deleted": deleted})
        return released, deleted

    async def check_claims(self) -> int:
        """Claims older than the grace period (a message id carries its send's time): final when
        the message exists in Redis or MongoDB, given back when it does not."""
        claimed_before = first_id_at(int((time.time() - self.claim_grace_seconds) * 1000))
        released = 0
        while claims := await self.audio.unchecked_claims(claimed_before=claimed_before, limit=BATCH):
            for audio_id, message_id in claims:
                if await self.messages.find(message_id) is not None:
                    await self.audio.confirm_claim(audio_id=audio_id, message_id=message_id)
                elif await self.audio.release(audio_id=audio_id, message_id=message_id):
                    log.warning("gave back the upload of a send that never stored its message",
                                extra={"audio_id": audio_id, "message_id": message_id})
                    released += 1
            if len(claims) < BATCH:
                break
        return released

    async def delete_expired(self) -> int:
        uploaded_before = datetime.now(UTC) - timedelta(seconds=self.ttl_seconds)
        deleted = 0
        while ids := await self.audio.unsent_before(uploaded_before, limit=BATCH):
            for audio_id in ids:
                deleted += await self.audio.delete_unsent(audio_id, uploaded_before=uploaded_before)
            if len(ids) < BATCH:
                break
        return deleted
