"""Fan-out: ONE Redis pub/sub connection per process, routed to local subscribers.

A channel is subscribed in Redis while at least one local subscriber listens to it and
unsubscribed when the last one leaves, so an instance only receives the events of the
users connected to it. Subscribers get a bounded queue; one that falls too far behind is
cut off (its subscription ends with `SubscriberTooSlow`) instead of growing memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import AsyncIterator

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from storage.background import cancel_and_wait

log = logging.getLogger(__name__)

QUEUE_SIZE = 1000


class _Closed(enum.Enum):
    CLOSED = enum.auto()


_CLOSED = _Closed.CLOSED


class SubscriberTooSlow(Exception):
    pass


class Subscription:
    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.queue: asyncio.Queue[str | _Closed] = asyncio.Queue(QUEUE_SIZE)
        self.overflowed = False

    def deliver(self, data: str) -> None:
        try:
            self.queue.put_nowait(data)
        except asyncio.QueueFull:
            self.overflowed = True

    async def __aiter__(self) -> AsyncIterator[str]:
        while True:
            if self.overflowed:
                raise SubscriberTooSlow(self.channel)
            item = await self.queue.get()
            if item is _CLOSED:
                return
            yield item


class PubSubHub:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._pubsub = redis.pubsub(ignore_subscribe_messages=True)
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
                subscription.queue.put_nowait(_CLOSED)
        self._local.clear()
        await self._pubsub.aclose()  # type: ignore[attr-defined]  # redis 5+; types-redis describes 4.6

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscription]:
        subscription = Subscription(channel)
        async with self._lock:
            listeners = self._local.setdefault(channel, set())
            listeners.add(subscription)
            if len(listeners) == 1:
                try:
                    await self._pubsub.subscribe(channel)
                except BaseException:
                    listeners.discard(subscription)
                    del self._local[channel]
                    raise
                self._has_channels.set()
        try:
            yield subscription
        finally:
            await asyncio.shield(self._leave(subscription))

    async def _leave(self, subscription: Subscription) -> None:
        async with self._lock:
            listeners = self._local.get(subscription.channel)
            if listeners is None:
                return
            listeners.discard(subscription)
            if not listeners:
                del self._local[subscription.channel]
                with contextlib.suppress(RedisConnectionError, RedisTimeoutError):
                    await self._pubsub.unsubscribe(subscription.channel)
                if not self._local:
                    self._has_channels.clear()

    async def _read_forever(self) -> None:
        backoff = 0.1
        while True:
            await self._has_channels.wait()
            try:
                message = await self._pubsub.get_message(timeout=1.0)
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - connection lost: rebuild and resubscribe
                log.warning("pub/sub connection lost, reconnecting", extra={"error": repr(exc)})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                await self._resubscribe()
                continue
            if message is None or message.get("type") != "message":
                continue
            for subscription in tuple(self._local.get(message["channel"], ())):
                subscription.deliver(message["data"])

    async def _resubscribe(self) -> None:
        async with self._lock:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()  # type: ignore[attr-defined]  # redis 5+; types-redis describes 4.6
            self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            if self._local:
                with contextlib.suppress(RedisConnectionError, RedisTimeoutError, OSError):
                    await self._pubsub.subscribe(*self._local)
