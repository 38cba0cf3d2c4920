"""Background upkeep: steps repeated on a timer, and stopping tasks within a bound."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

log = logging.getLogger(__name__)

CANCEL_TIMEOUT_SECONDS = 2.0


async def run_every(seconds: float, step: Callable[[], Awaitable[object]], *, what: str) -> None:
    """Run `step` every `seconds` until cancelled; a failure (a database down) is logged and the
    step runs again at the next tick."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await step()
        except Exception as exc:  # noqa: BLE001 - any failure: log it and try at the next tick
            log.warning("%s failed", what, extra={"error": repr(exc)})


class IdleWait:
    """A polling consumer's pause after an empty read: `shortest` at first, doubling while its
    streams stay empty up to `longest`, and `shortest` again once work comes. A busy consumer
    reads again at once; an idle one costs a few reads a second instead of dozens (each read is
    one command per partition's stream)."""

    def __init__(self, shortest: float, longest: float) -> None:
        self.shortest = shortest
        self.longest = max(longest, shortest)
        self._next = shortest

    def after_empty(self) -> float:
        wait = self._next
        self._next = min(wait * 2, self.longest)
        return wait

    def after_work(self) -> None:
        self._next = self.shortest


async def cancel_and_wait(tasks: Iterable[asyncio.Task[None]], *, timeout: float = CANCEL_TIMEOUT_SECONDS) -> None:
    """Cancel `tasks` and wait at most `timeout` for them to end.

    A Redis read in flight can absorb a cancellation and wait on; shutdown then goes on without
    that task (and says so) instead of hanging. Never swallows the caller's own cancellation.
    """
    running = [task for task in tasks if not task.done()]
    for task in running:
        task.cancel()
    if not running:
        return
    _, pending = await asyncio.wait(running, timeout=timeout)
    if pending:
        log.warning("background tasks did not stop when cancelled", extra={
            "tasks": sorted(task.get_name() for task in pending), "waited_s": timeout})
