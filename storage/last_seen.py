"""lastSeenAt, recorded in batches: a storm of closing sockets becomes one bulk write."""

from __future__ import annotations

import asyncio
import logging

from storage.background import cancel_and_wait
from storage.users import UserStore

log = logging.getLogger(__name__)


class LastSeenWriter:
    """Collects lastSeenAt updates and writes them together every `interval_seconds`.

    Best effort: a failed flush is logged and retried with the next batch.
    """

    def __init__(self, users: UserStore, *, interval_seconds: float = 0.5, max_batch: int = 1000) -> None:
        self.users = users
        self.interval_seconds = interval_seconds
        self.max_batch = max_batch
        self._pending: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None

    def record(self, user_id: str, at_ms: int) -> None:
        """Queue it (presence's offline hook: never waits on MongoDB)."""
        self._pending[user_id] = max(at_ms, self._pending.get(user_id, 0))

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="last-seen-writer")

    async def stop(self, timeout: float = 5.0) -> None:
        """Write what is pending, for at most `timeout` (MongoDB may be gone at shutdown)."""
        if self._task is not None:
            await cancel_and_wait([self._task])
        try:
            async with asyncio.timeout(timeout):
                await self.flush()
        except TimeoutError:
            log.warning("lastSeenAt not recorded at shutdown", extra={"users": len(self._pending)})

    async def flush(self) -> None:
        while self._pending:
            batch = dict(list(self._pending.items())[: self.max_batch])
            for user_id in batch:
                del self._pending[user_id]
            try:
                await self.users.set_last_seen_many(batch)
            except Exception as exc:  # noqa: BLE001 - MongoDB down: keep the newest, try later
                for user_id, at_ms in batch.items():
                    self._pending[user_id] = max(at_ms, self._pending.get(user_id, 0))
                log.warning("could not record lastSeenAt", extra={"users": len(batch), "error": repr(exc)})
                return

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_seconds)
            await self.flush()
