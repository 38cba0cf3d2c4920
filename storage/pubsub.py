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

A cache kept current by notices (revoked tokens, blocks) must know when it may have missed one,
also when the connection dies silently. A subscription opened with `echo_seconds` sends a PING
through the pub/sub connection that often; Redis answers in order after every message it
published before, so when the subscriber takes the echo, it has taken every notice published
before the PING was sent (`Subscription.current_until`).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from storage.background import cancel_and_wait

log = logging.getLogger(__name__)

QUEUE_SIZE = 1000
MAX_PENDING_ECHOES = 64  # echoes a dead connection never answered are forgotten


def echo_interval(cache_seconds: float) -> float | None:
    """How often to echo a notices channel whose cache trusts an answer `cache_seconds` past
    the newest echo: a few echoes per period, so one late echo does not expire the cache."""
    return min(1.0, max(0.05, cache_seconds / 4)) if cache_seconds > 0 else None


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


def current_until(notices: Subscription | None, read_at: float) -> float:
    """`Subscription.current_until` of a cache's notices subscription; `read_at` itself while
    none listens."""
    return notices.current_until(read_at) if notices is not None else read_at


@dataclass(frozen=True, slots=True)
class _Echo:
    sent_at: float  # monotonic time the PING left


class Subscription:
    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.queue: asyncio.Queue[str | _Signal | _Echo] = asyncio.Queue(QUEUE_SIZE)
        self.ended: SubscriptionInterrupted | _Signal | None = None
        self._established_at: float | None = None  # when the first echo was taken
        self._echoed_up_to = 0.0  # send time of the newest echo taken

    def deliver(self, data: str | _Echo) -> None:
        if self.ended is not None:
            return
        try:
            self.queue.put_nowait(data)
        except asyncio.QueueFull:
            self.end(SubscriberTooSlow(self.channel))

    def current_until(self, read_at: float) -> float:
        """Up to when a value read (from Redis) at monotonic time `read_at` is known current,
        for a subscriber that applies every notice before taking the next: the send time of
        the newest echo taken, if this subscription was established (Redis had processed the
        SUBSCRIBE) before the read and has not ended; else `read_at` itself."""
        if self.ended is not None or self._established_at is None or read_at < self._established_at:
            return read_at
        return max(read_at, self._echoed_up_to)

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
            if isinstance(item, _Echo):  # every notice before it was taken (and applied)
                if self._established_at is None:
                    self._established_at = time.monotonic()
                self._echoed_up_to = item.sent_at
            elif not isinstance(item, _Signal):
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
        self._echo_ids = itertools.count()
        self._echoes: dict[str, tuple[Subscription, float]] = {}  # PING token -> (asker, send time)

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
        async with self._lock:  # not while an echo is being sent
            await self._discard_pubsub()

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str, *, echo_seconds: float | None = None) -> AsyncIterator[Subscription]:
        """Listen to `channel` until the block ends; with `echo_seconds`, echoes are sent that
        often (see `Subscription.current_until`)."""
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
        echoing = asyncio.create_task(self._echo_every(subscription, echo_seconds)) if echo_seconds else None
        try:
            yield subscription
        finally:
            if echoing is not None:
                await cancel_and_wait([echoing])
            await asyncio.shield(self._leave(subscription))

    async def _echo_every(self, subscription: Subscription, seconds: float) -> None:
        while subscription.ended is None:
            # Under the lock that stop() and a fresh start close the connection under, and only on a
            # connection already open: an echo must never open one on a pub/sub object being dropped.
            async with self._lock:
                if subscription.ended is not None or self._pubsub.connection is None:
                    return
                token = f"echo:{next(self._echo_ids)}"
                self._echoes[token] = (subscription, time.monotonic())
                if len(self._echoes) > MAX_PENDING_ECHOES:
                    del self._echoes[next(iter(self._echoes))]
                with contextlib.suppress(RedisConnectionError, RedisTimeoutError, OSError):  # the reader copes
                    await self._pubsub.ping(token)
            await asyncio.sleep(seconds)

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
                # get_message, with the echoes taken out first: redis-py's handle_message drops
                # a PING reply that arrives as a decoded string (what it is with this server)
                response = await self._pubsub.parse_response(block=False, timeout=1.0)
                if self._take_echo(response):
                    continue
                message = await self._pubsub.handle_message(response, ignore_subscribe_messages=True)
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

    def _take_echo(self, response: Any) -> bool:
        """Whether `response` answers a PING of `_echo_every` (as the token, or ["pong", token]);
        its asker is then handed the echo behind every message read before it."""
        if isinstance(response, list) and len(response) == 2 and response[0] in ("pong", b"pong"):
            response = response[1]
        if not isinstance(response, str):
            return False
        echo = self._echoes.pop(response, None)
        if echo is not None:
            echo[0].deliver(_Echo(echo[1]))
        return echo is not None or response.startswith("echo:")

    async def _start_afresh(self) -> None:
        """End every subscription and drop the connection; the next subscriber opens a new one."""
        async with self._lock:
            self._interrupt_all()
            self._on_count_change(-self.local_subscriptions)
            self._local.clear()
            self._echoes.clear()
            self._has_channels.clear()
            await self._discard_pubsub()
            self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
