"""Delivery of Web Push notifications: one Redis Stream per partition (`keys.push_stream`),
appended to by the send script itself (so a send never waits for a push service, and a message
is queued exactly when it is created), consumed by the group `pushers` in every instance.

For each new message the worker finds the members to notify — not the sender, none with a
WebSocket connected on any instance (`storage.presence`), none who muted the conversation —
and POSTs to each of their subscriptions an `aes128gcm`-encrypted payload with a VAPID JWT
(push.crypto), TTL, Urgency and a Topic per conversation (a push service keeps only the newest
notification of a conversation for an offline device). Each entry is worked on in a task of its
own (up to `concurrency`), so one slow push service holds up only its own entry. A 429, a 5xx
or a network error is retried with exponential backoff (Retry-After honoured), up to
`max_attempts`; 404/410 removes the subscription. An entry is acknowledged and deleted once
handled; one left pending by a dead instance is taken over once idle for `claim_idle_ms` (a live
worker keeps its entries fresh), and delivered again: a device may then get a notification
twice, which its Topic makes replace the first. An entry handed out `max_deliveries` times
without being finished (it fails or kills its worker every time) is dropped, with a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from redis.asyncio import Redis

from push.crypto import Vapid, b64url_encode, encrypt
from storage import keys
from storage.background import IdleWait, cancel_and_wait
from storage.conversations import ConversationStore
from storage.messages import MessageStore
from storage.mutes import MuteStore
from storage.outbox import StreamEntry, claim_streams, consumer_name, ensure_groups, read_streams
from storage.presence import PresenceTracker
from storage.push import PushSubscriptionStore, StoredPushSubscription
from storage.records import StoredMessage
from storage.users import UserStore

log = logging.getLogger(__name__)

PREVIEW_CHARS = 120
VOICE_PREVIEW = "Voice message"
DELIVERED = (200, 201, 202)
GONE = (404, 410)
MAX_BACKOFF_SECONDS = 300.0


def preview_of(message: StoredMessage) -> str:
    """A short text for the notification: the text, the transcript once it landed, else "Voice message"."""
    text = message.text or (message.transcript.text if message.transcript else "")
    text = " ".join(text.split())
    if not text:
        return VOICE_PREVIEW if message.kind == "VOICE" else ""
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def topic_of(conversation_id: str) -> str:
    """RFC 8030 Topic (at most 32 base64url characters): one per conversation."""
    return b64url_encode(hashlib.sha256(conversation_id.encode()).digest()[:24])


def retry_after_seconds(response: httpx.Response | None) -> float | None:
    """A Retry-After header in seconds (delta or HTTP date), if the push service sent one."""
    value = response.headers.get("retry-after") if response is not None else None
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    with contextlib.suppress(TypeError, ValueError):
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    return None


@dataclass(frozen=True)
class PushPolicy:
    """How the worker delivers: the TTL header (and how stale a message may be), entries at
    once, tries and their first backoff, request timeout, takeover and give-up."""

    ttl_seconds: int = 86400
    concurrency: int = 16
    max_attempts: int = 5
    retry_base_seconds: float = 1.0
    timeout_seconds: float = 10.0
    claim_idle_ms: int = 60_000
    max_deliveries: int = 5
    idle_poll_seconds: float = 0.1
    idle_poll_max_seconds: float = 0.5  # the pause doubles while the streams stay empty


class PushWorker:
    def __init__(self, redis: Redis, *, messages: MessageStore, conversations: ConversationStore, users: UserStore,
                 presence: PresenceTracker, mutes: MuteStore, subscriptions: PushSubscriptionStore, vapid: Vapid,
                 policy: PushPolicy | None = None) -> None:
        self.redis = redis
        self.messages, self.conversations, self.users = messages, conversations, users
        self.presence, self.mutes, self.subscriptions = presence, mutes, subscriptions
        self.vapid = vapid
        self.policy = policy = policy or PushPolicy()
        self.consumer = consumer_name()
        self.http = httpx.AsyncClient(timeout=policy.timeout_seconds, follow_redirects=False)
        self._stopping = asyncio.Event()
        self._held: dict[tuple[str, str], asyncio.Task[None]] = {}  # entries being worked on
        self._tasks: list[asyncio.Task[None]] = []
        self._next_claim_at = 0.0

    async def start(self) -> None:
        await ensure_groups(self.redis, keys.push_streams(), keys.PUSH_GROUP)
        self._tasks = [asyncio.create_task(self._consume(), name="push-consumer"),
                       asyncio.create_task(self._keep_claimed(), name="push-keep-claimed")]

    async def stop(self, grace_seconds: float = 1.5) -> None:
        """Stop reading, give the deliveries in hand `grace_seconds`, then cancel the rest: their
        entries stay pending and another instance takes them over."""
        self._stopping.set()
        await cancel_and_wait(self._tasks)
        if self._held:
            _, running = await asyncio.wait(list(self._held.values()), timeout=grace_seconds)
            await cancel_and_wait(list(running))
        await self.http.aclose()

    async def _consume(self) -> None:
        backoff = 0.2
        idle = IdleWait(self.policy.idle_poll_seconds, self.policy.idle_poll_max_seconds)
        while not self._stopping.is_set():
            try:
                free = self.policy.concurrency - len(self._held)
                if free <= 0:
                    await asyncio.wait(list(self._held.values()), return_when=asyncio.FIRST_COMPLETED)
                    continue
                entries = await self._next_entries(free)
                backoff = 0.2
                for stream, entry_id, fields in entries:
                    if (stream, entry_id) not in self._held:
                        self._held[(stream, entry_id)] = asyncio.create_task(self._handle(stream, entry_id, fields))
                if not entries:
                    await self._pause(idle.after_empty())
                else:
                    idle.after_work()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis hiccup: wait and retry
                log.warning("push worker error", extra={"error": repr(exc)})
                if "NOGROUP" in str(exc):  # Redis lost its data: the group must be made again
                    with contextlib.suppress(Exception):
                        await ensure_groups(self.redis, keys.push_streams(), keys.PUSH_GROUP)
                await self._pause(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _next_entries(self, count: int) -> list[StreamEntry]:
        """Entries a dead consumer left (looked for at most once a second), else new ones."""
        now = time.monotonic()
        if now >= self._next_claim_at:
            self._next_claim_at = now + min(1.0, self.policy.claim_idle_ms / 2000)
            claimed = await claim_streams(self.redis, keys.PUSH_GROUP, self.consumer, keys.push_streams(),
                                          min_idle_ms=self.policy.claim_idle_ms, count=count)
            taken = [entry for entry in claimed if await self._worth_another_try(*entry)]
            if taken:
                return taken
        return await read_streams(self.redis, keys.PUSH_GROUP, self.consumer, keys.push_streams(), ">", count)

    async def _worth_another_try(self, stream: str, entry_id: str, fields: dict[str, str] | None) -> bool:
        """False (and the entry dropped) once it was handed out `max_deliveries` times."""
        pending = await self.redis.xpending_range(stream, keys.PUSH_GROUP, min=entry_id, max=entry_id, count=1)
        deliveries = int(pending[0]["times_delivered"]) if pending else 0
        if deliveries <= self.policy.max_deliveries:
            log.info("took over a push of a dead worker", extra={"entry": entry_id, "deliveries": deliveries})
            return True
        log.warning("push dropped: handed out too often", extra={"entry": entry_id, "fields": fields,
                                                                 "deliveries": deliveries})
        await self._acknowledge(stream, entry_id)
        return False

    async def _acknowledge(self, stream: str, entry_id: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:  # one stream: one slot
            pipe.xack(stream, keys.PUSH_GROUP, entry_id)
            pipe.xdel(stream, entry_id)
            await pipe.execute()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()

    async def _keep_claimed(self) -> None:
        """Reset the idle time of the entries we work on, so no one takes a live delivery over."""
        interval = max(self.policy.claim_idle_ms / 3000, 0.2)
        while True:
            await asyncio.sleep(interval)
            for stream, entry_id in list(self._held):
                with contextlib.suppress(Exception):  # the next round tries again
                    await self.redis.xclaim(stream, keys.PUSH_GROUP, self.consumer, 0, [entry_id], justid=True)

    async def _handle(self, stream: str, entry_id: str, fields: dict[str, str] | None) -> None:
        try:
            if fields and "id" in fields and "conversation" in fields:
                await self.notify(fields["id"], fields["conversation"])
            await self._acknowledge(stream, entry_id)
        except Exception as exc:  # noqa: BLE001 - left pending: taken over once idle, tried again
            log.warning("push delivery failed, left for a retry", extra={"entry": entry_id, "error": repr(exc)})
        finally:
            self._held.pop((stream, entry_id), None)

    async def notify(self, message_id: str, conversation_id: str) -> int:
        """Push one new message to its members who are offline and have not muted it. Returns
        how many subscriptions it was sent to."""
        found = await self.messages.get_hot_keys([keys.message_key(conversation_id, message_id)])
        conversation = await self.conversations.get(conversation_id)
        if not found or conversation is None:
            return 0
        message = found[0]
        now_ms = int(time.time() * 1000)
        if now_ms - message.sent_at_ms > self.policy.ttl_seconds * 1000:  # long stale: the device has synced
            return 0
        members = [m.user_id for m in conversation.members if m.user_id != message.sender_id]
        online = await self.presence.online_among(members)
        offline = [m for m in members if m not in online]
        muted = await self.mutes.muted_among(conversation_id, offline, now_ms)
        targets = await self.subscriptions.of_users([m for m in offline if m not in muted])
        if not targets:
            return 0
        sender = await self.users.get(message.sender_id)
        payload = orjson.dumps({
            "type": "MESSAGE", "conversationId": conversation_id, "messageId": message.id,
            "conversationTitle": conversation.title, "senderId": message.sender_id,
            "senderName": sender.username if sender else "", "kind": message.kind,
            "preview": preview_of(message), "sentAt": message.sent_at_ms,
        })
        headers = {"TTL": str(self.policy.ttl_seconds), "Urgency": "high", "Topic": topic_of(conversation_id),
                   "Content-Encoding": "aes128gcm", "Content-Type": "application/octet-stream"}
        await asyncio.gather(*[self.deliver(target, payload, headers) for target in targets])
        return len(targets)

    async def deliver(self, target: StoredPushSubscription, payload: bytes, headers: dict[str, str]) -> None:
        """POST to one subscription, retrying 429/5xx and network errors; forget it on 404/410."""
        for attempt in range(1, self.policy.max_attempts + 1):
            response: httpx.Response | None = None
            try:
                response = await self.http.post(
                    target.endpoint, content=encrypt(payload, target.p256dh, target.auth),
                    headers={**headers, "Authorization": self.vapid.authorization(target.endpoint)},
                )
            except httpx.HTTPError as exc:
                log.info("push service unreachable", extra={"endpoint": _origin(target), "error": repr(exc)})
            if response is not None and response.status_code in DELIVERED:
                return
            if response is not None and response.status_code in GONE:
                await self.subscriptions.remove_gone(target)
                log.info("push subscription gone", extra={"endpoint": _origin(target)})
                return
            if response is not None and response.status_code != 429 and response.status_code < 500:
                log.warning("push refused", extra={"endpoint": _origin(target), "status": response.status_code,
                                                   "body": response.text[:200]})
                return
            if attempt < self.policy.max_attempts:
                delay = retry_after_seconds(response) or self.policy.retry_base_seconds * 2 ** (attempt - 1)
                await asyncio.sleep(min(delay, MAX_BACKOFF_SECONDS))
        log.warning("push given up", extra={"endpoint": _origin(target), "attempts": self.policy.max_attempts})


def _origin(target: StoredPushSubscription) -> Any:
    """The push service of a subscription, for the log (its endpoint's path is a secret of sorts)."""
    return httpx.URL(target.endpoint).host
