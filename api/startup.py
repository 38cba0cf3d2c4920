"""Start-up: open the databases, build every store once, start the background workers.

Each step registers its own clean-up on the exit stack, so shutdown runs in reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from pymongo import AsyncMongoClient, WriteConcern
from redis.asyncio import Redis

from api.metrics import LOCAL_SUBSCRIPTIONS, forget_this_process
from api.settings import Settings
from api.websocket import watch_revocations
from media.signing import MediaSigner
from push.crypto import Vapid, generate_private_key, load_private_key
from push.worker import PushPolicy, PushWorker
from resolvers.context import parse_trusted_proxies
from resolvers.limits import RateLimits, Rule
from resolvers.passwords import PasswordHashing
from resolvers.runtime import PushConfig, Runtime
from resolvers.sessions import LiveSessions
from resolvers.tokens import TokenService
from storage.archive import ArchiveStore
from storage.audio import AudioStore
from storage.background import cancel_and_wait
from storage.backlog import BacklogReader
from storage.blocks import BlockStore
from storage.cold import ConversationDoc, MessageDoc, ReadMarkerDoc, UserDoc
from storage.connections import close_redis, open_mongo, open_redis
from storage.conversation_lists import ConversationLists
from storage.conversations import ConversationStore
from storage.hot import ensure_indexes
from storage.hot_window import HotWindow
from storage.last_seen import LastSeenWriter
from storage.member_state import MemberStateStore
from storage.messages import MessageStore
from storage.migration import migrate_pair_model
from storage.mutes import MuteStore
from storage.outbox import Persister
from storage.presence import PresenceTracker
from storage.pubsub import PubSubHub
from storage.push import PushSubscriptionStore
from storage.ratelimit import RateLimiter
from storage.read_markers import ReadMarkerArchive
from storage.reports import ReportStore
from storage.revocations import RevocationStore
from storage.search import SearchIndex
from storage.upload_sweeper import UploadSweeper
from storage.users import UserStore
from transcription.engines import make_transcriber
from transcription.whisper import DecodeOptions
from transcription.worker import TranscriptionWorker


def whisper_options(settings: Settings) -> DecodeOptions:
    """The local engine's decoding, from the WHISPER_* settings."""
    return DecodeOptions(
        beam_size=settings.whisper_beam_size,
        vad_filter=settings.whisper_vad_filter,
        temperature_fallback=settings.whisper_temperature_fallback,
        initial_prompt=settings.whisper_initial_prompt,
    )


@dataclass(frozen=True)
class Started:
    """What the lifespan hands to requests (`request.state`)."""

    runtime: Runtime
    redis: Redis
    mongo: AsyncMongoClient[Any]


def rate_limits(settings: Settings) -> RateLimits:
    return RateLimits(
        enabled=settings.rate_limits == "on",
        send_message=Rule.parse(settings.rate_limit_send_message),
        upload_audio=Rule.parse(settings.rate_limit_upload_audio),
        search=Rule.parse(settings.rate_limit_search),
        retry_transcription=Rule.parse(settings.rate_limit_retry_transcription),
        mark_read=Rule.parse(settings.rate_limit_mark_read),
        report_message=Rule.parse(settings.rate_limit_report_message),
        register=Rule.parse(settings.rate_limit_register),
        login=Rule.parse(settings.rate_limit_login),
        login_free_failures=settings.login_free_failures,
        login_failure_window_seconds=settings.login_failure_window_seconds,
        login_max_backoff_seconds=settings.login_max_backoff_seconds,
    )


def password_hasher(settings: Settings) -> PasswordHasher:
    """argon2id at the configured cost (by default the library's recommended parameters)."""
    return PasswordHasher(time_cost=settings.password_hash_time_cost, memory_cost=settings.password_hash_memory_kib)


def archive_write_concern(settings: Settings) -> WriteConcern:
    """A message acknowledged by the persister survives a crash (journal) and a failover (majority)."""
    return WriteConcern(w=1 if settings.archive_write_concern == "1" else "majority", j=True)


DEV_VAPID_SUBJECT = "mailto:admin@localhost"


def dev_secret_file(path: Path, make: Callable[[], str]) -> str:
    """A secret made once by `make` and kept at `path` (mode 600), for dev mode: what it
    protects (tokens, push subscriptions) then survives restarts."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:  # O_EXCL: of several workers starting at once, exactly one writes the secret
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # the writer may not have finished yet
            secret = path.read_text().strip()
            if secret:
                return secret
            time.sleep(0.02)
        raise RuntimeError(f"{path} is empty; delete it to generate a new one") from None
    secret = make()
    with os.fdopen(fd, "w") as file:
        file.write(secret)
    return secret


def dev_vapid_private_key(data_dir: Path) -> str:
    """The dev-mode VAPID key: browsers' subscriptions are bound to it, so it is kept."""
    return dev_secret_file(data_dir / "vapid_private_key", generate_private_key)


def vapid(settings: Settings) -> Vapid | None:
    """The application server's VAPID identity, or None when push is off."""
    if not settings.push_enabled:
        return None
    private_key = settings.vapid_private_key or dev_vapid_private_key(settings.data_dir)
    return Vapid(load_private_key(private_key), settings.vapid_subject or DEV_VAPID_SUBJECT)


async def start(settings: Settings, tokens: TokenService, stack: contextlib.AsyncExitStack) -> Started:
    redis_url, mongodb_url = settings.database_urls()
    redis = await open_redis(redis_url, max_connections=settings.redis_max_connections)
    stack.push_async_callback(close_redis, redis)
    stack.callback(forget_this_process)  # last: its live gauges leave the sums with it
    mongo = await open_mongo(mongodb_url, settings.mongodb_database)
    stack.push_async_callback(mongo.close)
    database = mongo[settings.mongodb_database]

    users = UserStore(redis, database[UserDoc.Settings.name])
    messages_collection = database[MessageDoc.Settings.name]
    archive = ArchiveStore(messages_collection.with_options(write_concern=archive_write_concern(settings)))
    read_markers = ReadMarkerArchive(database[ReadMarkerDoc.Settings.name])
    hot_window = HotWindow(redis, archive, window_seconds=settings.hot_window_days * 86400,
                           interval_seconds=settings.hot_window_trim_seconds,
                           # also after Redis lost its data at run time (upkeep notices it)
                           restore_steps=[functools.partial(ensure_indexes, redis), users.reconcile_mirror])
    identity = vapid(settings)
    messages = MessageStore(redis, archive, hot_window, push_queue=identity is not None)
    hot_window.restore_steps += [messages.restore_client_ids,  # need the store the window serves
                                 messages.requeue_lost_transcriptions]
    conversations = ConversationStore(redis, database[ConversationDoc.Settings.name], archive, read_markers)
    conversation_lists = ConversationLists(redis, conversations, archive)
    member_state = MemberStateStore(redis)
    stack.callback(member_state.close)
    audio = AudioStore(database)
    mutes = MuteStore(redis, database["conversation_mutes"])
    hot_window.restore_steps.append(mutes.restore)
    push_subscriptions = PushSubscriptionStore(database["push_subscriptions"],
                                               max_per_user=settings.push_max_subscriptions_per_user)

    await migrate_pair_model(redis, database, archive)
    await hot_window.restore()  # the search indexes, the user mirror, the archive markers, the hot window
    await audio.create_indexes()
    await archive.ensure_client_id_index()
    await mutes.create_indexes()
    await push_subscriptions.create_indexes()

    persister = Persister(redis, messages, archive, read_markers, conversations,
                          claim_idle_ms=int(settings.outbox_claim_idle_seconds * 1000))
    persister.start()
    stack.push_async_callback(persister.stop)
    hot_window.start()
    stack.push_async_callback(hot_window.stop)
    uploads = UploadSweeper(audio, messages, ttl_seconds=settings.upload_ttl_seconds,
                            claim_grace_seconds=settings.upload_claim_grace_seconds,
                            interval_seconds=settings.upload_sweep_seconds)
    uploads.start()
    stack.push_async_callback(uploads.stop)
    hub = PubSubHub(redis, on_count_change=LOCAL_SUBSCRIPTIONS.inc)
    hub.start()
    stack.push_async_callback(hub.stop)
    last_seen = LastSeenWriter(users)
    last_seen.start()
    stack.push_async_callback(last_seen.stop)  # after presence.stop: flushes its last writes
    presence = PresenceTracker(redis, ttl_seconds=settings.presence_ttl_seconds,
                               heartbeat_seconds=settings.presence_heartbeat_seconds, on_offline=last_seen.record)
    presence.start()
    stack.push_async_callback(presence.stop)
    blocks = BlockStore(redis, database["blocks"], hub, max_blocks=settings.max_blocked_users,
                        cache_seconds=settings.block_cache_seconds)
    await blocks.create_indexes()
    blocks.start()
    stack.push_async_callback(blocks.stop)  # before hub.stop
    reports = ReportStore(database["reports"])
    await reports.create_indexes()

    transcriber = await asyncio.to_thread(
        make_transcriber,
        settings.stt_engine,
        whisper_model=settings.whisper_model,
        whisper_options=whisper_options(settings),
        deepgram_api_key=settings.deepgram_api_key,
        deepgram_url=settings.deepgram_url,
        deepgram_model=settings.deepgram_model,
        deepgram_timeout_seconds=settings.deepgram_timeout_seconds,
    )
    stack.push_async_callback(transcriber.close)
    worker = TranscriptionWorker(
        redis, messages=messages, audio=audio, transcriber=transcriber,
        concurrency=settings.transcription_concurrency,
        max_attempts=settings.transcription_max_attempts,
        retry_base_seconds=settings.transcription_retry_seconds,
        claim_idle_ms=int(settings.transcription_claim_idle_seconds * 1000),
        max_deliveries=settings.transcription_max_deliveries,
    )
    await worker.start()
    stack.push_async_callback(worker.stop)

    if identity is not None:
        policy = PushPolicy(
            ttl_seconds=settings.push_ttl_seconds, concurrency=settings.push_concurrency,
            max_attempts=settings.push_max_attempts, retry_base_seconds=settings.push_retry_seconds,
            timeout_seconds=settings.push_timeout_seconds, claim_idle_ms=int(settings.push_claim_idle_seconds * 1000),
        )
        pusher = PushWorker(redis, messages=messages, conversations=conversations, users=users, presence=presence,
                            mutes=mutes, subscriptions=push_subscriptions, vapid=identity, policy=policy)
        await pusher.start()
        stack.push_async_callback(pusher.stop)

    passwords = PasswordHashing(settings.password_hash_concurrency, password_hasher(settings))
    stack.callback(passwords.close)

    runtime = Runtime(
        users=users,
        messages=messages,
        search=SearchIndex(redis, archive),
        conversations=conversations,
        member_state=member_state,
        conversation_lists=conversation_lists,
        audio=audio,
        presence=presence,
        hub=hub,
        limiter=RateLimiter(redis),
        tokens=tokens,
        limits=rate_limits(settings),
        passwords=passwords,
        media_signer=MediaSigner.from_secret(tokens.secret, settings.media_url_ttl_seconds),
        max_audio_bytes=settings.max_audio_bytes,
        max_audio_seconds=settings.max_audio_seconds,
        max_group_members=settings.max_group_members,
        edit_window_seconds=settings.edit_window_seconds,
        trusted_proxies=parse_trusted_proxies(settings.trusted_proxies),
        revocations=RevocationStore(redis, database[UserDoc.Settings.name], hub,
                                    token_ttl_seconds=settings.jwt_ttl_seconds,
                                    cache_seconds=settings.revocation_cache_seconds),
        sessions=LiveSessions(),
        backlog=BacklogReader(redis),
        mutes=mutes,
        push_subscriptions=push_subscriptions,
        push=PushConfig(vapid_public_key=identity.public_key if identity else None,
                        allow_loopback_http=settings.push_allow_loopback_http),
        blocks=blocks,
        reports=reports,
    )
    revocation_watcher = asyncio.create_task(watch_revocations(runtime), name="revocation-watcher")
    stack.push_async_callback(cancel_and_wait, [revocation_watcher])  # before hub.stop
    return Started(runtime=runtime, redis=redis, mongo=mongo)
