"""Background upkeep of the hot window: periodic trimming of messages older than it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from redis.asyncio import Redis

from storage import keys
from storage.archive import hydrate_hot_window, rebuild_archive_markers, trim_hot_window

log = logging.getLogger(__name__)


class HotWindowKeeper:
    def __init__(self, redis: Redis, *, window_seconds: float, interval_seconds: float) -> None:
        self.redis = redis
        self.window_seconds = window_seconds
        self.interval_seconds = interval_seconds
        self._task: asyncio.Task[None] | None = None

    def window_start_ms(self) -> int:
        return int((time.time() - self.window_seconds) * 1000)

    async def restore(self) -> None:
        """Rebuild what a Redis without our data lacks: archive markers and the hot window.
        Run at start-up and whenever the markers' sentinel disappears (Redis lost its data)."""
        window_start = self.window_start_ms()  # one value for both, so nothing falls between
        await rebuild_archive_markers(self.redis, window_start_ms=window_start)
        await hydrate_hot_window(self.redis, window_start_ms=window_start)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="hot-window-keeper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_seconds)
            try:
                if not await self.redis.exists(keys.archive_markers_ready()):
                    log.warning("Redis lost the archive markers: restoring from MongoDB")
                    await self.restore()
                await trim_hot_window(self.redis, window_start_ms=self.window_start_ms())
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - MongoDB down: trim later
                log.warning("hot window trim failed", extra={"error": repr(exc)})
