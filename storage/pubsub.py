"""Fan-out: ONE Redis pub/sub connection per process, routed to local subscribers.

A channel is subscribed in Redis while at least one local subscriber listens to it and
unsubscribed when the last one leaves, so an instance only receives the events of the
users connected to it. Subscribers get a bounded queue; one that falls too far behind is
cut off (its subscription ends with `SubscriberTooSlow`) instead of growing memory.

Pub/sub has no replay: whatever is published while the connection is down (Redis restart,
`CLIENT KILL TYPE pubsub`, output-buffer limit) is gone. redis-py reconnects and
resubscribes on its own, silently, so the hub watches every (re)connect of its connection and
ends every subscription open at that moment with `PubSubConnectionLost`; subscribers
resubscribe and refetch what they show. Both endings are `SubscriptionInterrupted`, which the
schema turns into the `RESUBSCRIBE` error code.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from storage.background import cancel_and_wait

log = logging.getLogger(__name__)

QUEUE_SIZE = 1000


class _Signal(enum.Enum):
    CLOSED = enum.auto()  # the hub stopped: the subscription just ends
    WAKE = enum.auto()  # look at `Subscription.ended`


class SubscriptionInterrupted(Exception):
    """The subscription ended and events meant for it may be lost: subscribe again, refetch."""

    reason = "INTERRUPTED"

    def __init__(self, channel: str) -> None:
        super().__init__(channel)
        self.channel = channel


class SubscriberTooSlow(SubscriptionInterrupted):
    reason = "SUBSCRIBER_TOO_SLOW"


class PubSubConnectionLost(SubscriptionInterrupted):
    reason = "CONNECTION_LOST"


class Subscription:
    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.queue: asyncio.Queue[str | _Signal] = asyncio.Queue(QUEUE_SIZE)
        self.ended: SubscriptionInterrupted | _Signal | None = None

    def deliver(self, data: str) -> None:
        if self.ended is not None:
            return
        try:
            self.queue.put_nowait(data)
        except asyncio.QueueFull:
            self.end(SubscriberTooSlow(self.channel))

    def end(self, why: SubscriptionInterrupted | _Signal) -> None:
        """End the iteration at its next step; events still queued are dropped."""
        if self.ended is None:
            self.ended = why
        # A full queue means the consumer is not waiting: it sees `ended` before its next get.
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(_Signal.WAKE)

    async def __aiter__(self) -> AsyncIterator[str]:
        while True:
            if self.ended is _Signal.CLOSED:
                return
            if isinstance(self.ended, SubscriptionInterrupted):
                raise self.ended
            item = await self.queue.get()
            if not isinstance(item, _Signal):
                yield item


class PubSubHub:
    def __init__(self, redis: Redis, *, on_count_change: Callable[[int], None] | None = None) -> None:
        self.redis = redis
        # Told each change of `local_subscriptions` (+1, -1, -n) as it happens: a metric of
        # this process, right even while another process answers the scrape.
        self._on_count_change = on_count_change or (lambda delta: None)
        self._pubsub: PubSub = redis.pubsub(ignore_subscribe_messages=True)
        self._watched: Any = None  # the redis-py Connection whose reconnects end subscriptions
        self._local: dict[str, set[Subscription]] = {}
        self._lock = asyncio.Lock()
        self._has_channels = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    @property
    def local_subscriptions(self) -> int:
        return sum(len(s) for s in self._local.values())

    def start(self) -> None:
        self._reader = asyncio.create_task(self._read_forever(), name="pubsub-reader")

    async def stop(self) -> None:
        if self._reader is not None:
            await cancel_and_wait([self._reader])
        for subscriptions in self._local.values():
            for subscription in subscriptions:
                subscription.end(_Signal.CLOSED)
        self._on_count_change(-self.local_subscriptions)
        self._local.clear()
        await self._discard_pubsub()

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscription]:
        subscription = Subscription(channel)
        async with self._lock:
            listeners = self._local.setdefault(channel, set())
            listeners.add(subscription)
            self._on_count_change(1)
            if len(listeners) == 1:
                try:
                    await self._pubsub.subscribe(channel)
                    self._watch_connection()
                except BaseException as exc:
                    listeners.discard(subscription)
                    self._on_count_change(-1)
                    if not listeners:
                        self._local.pop(channel, None)
                    if isinstance(exc, RedisConnectionError | RedisTimeoutError | OSError):
                        # Redis is unreachable (redis-py's retries are spent): try again later.
                        raise PubSubConnectionLost(channel) from exc
                    raise
                self._has_channels.set()
        try:
            yield subscription
        finally:
            await asyncio.shield(self._leave(subscription))

    async def _leave(self, subscription: Subscription) -> None:
        async with self._lock:
            listeners = self._local.get(subscription.channel)
            if listeners is None or subscription not in listeners:
                return
            listeners.discard(subscription)
            self._on_count_change(-1)
            if not listeners:
                del self._local[subscription.channel]
                with contextlib.suppress(RedisConnectionError, RedisTimeoutError, OSError):
                    await self._pubsub.unsubscribe(subscription.channel)
                if not self._local:
                    self._has_channels.clear()

    def _watch_connection(self) -> None:
        # Registered once the connection is up, so only a REconnect calls `_reconnected`.
        connection = self._pubsub.connection
        if connection is not None and connection is not self._watched:
            connection.register_connect_callback(self._reconnected)
            self._watched = connection

    def _reconnected(self, connection: Any) -> None:
        """redis-py re-established the pub/sub connection (and resubscribed its channels):
        everything published in between is lost for every subscription open now."""
        if connection is self._watched:
            self._interrupt_all()

    def _interrupt_all(self) -> None:
        subscriptions = [s for listeners in self._local.values() for s in listeners]
        log.warning("pub/sub connection lost: %d subscriptions ended with RESUBSCRIBE", len(subscriptions),
                    extra={"subscriptions": len(subscriptions)})
        for subscription in subscriptions:
            subscription.end(PubSubConnectionLost(subscription.channel))

    async def _discard_pubsub(self) -> None:
        if self._watched is not None:
            self._watched.deregister_connect_callback(self._reconnected)
            self._watched = None
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()  # type: ignore[attr-defined]  # redis 5+; types-redis describes 4.6

    async def _read_forever(self) -> None:
        backoff = 0.1
        while True:
            await self._has_channels.wait()
            try:
                message = await self._pubsub.get_message(timeout=1.0)
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - redis-py's own reconnects failed: start afresh
                log.warning("pub/sub connection lost, reconnecting", extra={"error": repr(exc)})
                await self._start_afresh()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if message is None or message.get("type") != "message":
                continue
            for subscription in tuple(self._local.get(message["channel"], ())):
                subscription.deliver(message["data"])

    async def _start_afresh(self) -> None:
        """End every subscription and drop the connection; the next subscriber opens a new one."""
        async with self._lock:
            self._interrupt_all()
            self._on_count_change(-self.local_subscriptions)
            self._local.clear()
            self._has_channels.clear()
            await self._discard_pubsub()
            self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
