"""The ASGI application factory and its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from api.graphql import OperationEdge, QueryLimits, graphql_app
from api.limits import BodySizeLimit
from api.media import media_endpoint
from api.security import SecurityHeaders
from api.web import DEFAULT_WEB_DIR, web_routes
from api.logs import configure_logging
from api.metrics import metrics_endpoint
from api.settings import Settings
from media.signing import MediaSigner
from resolvers.context import Services
from resolvers.limits import RateLimits, Rule
from resolvers.tokens import TokenService
from schema.root import build_schema
from storage import users
from storage.audio import AudioStore
from storage.connections import open_mongo, open_redis
from storage.conversations import ConversationStore
from storage.ratelimit import RateLimiter
from storage.maintenance import HotWindowKeeper
from storage.messages import MessageStore
from storage.outbox import Persister
from storage.presence import PresenceTracker
from storage.pubsub import PubSubHub
from transcription.engines import make_transcriber
from transcription.worker import TranscriptionWorker

log = logging.getLogger("chattergram.app")

MULTIPART_OVERHEAD_BYTES = 64 * 1024


def dev_jwt_secret(data_dir: Path) -> str:
    """A random secret generated once and kept under DATA_DIR, so dev tokens survive restarts."""
    path = data_dir / "jwt_secret"
    data_dir.mkdir(parents=True, exist_ok=True)
    try:  # O_EXCL: of several workers starting at once, exactly one writes the secret
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # the writer may not have finished yet
            secret = path.read_text().strip()
            if secret:
                return secret
            time.sleep(0.02)
        raise RuntimeError(f"{path} is empty; delete it to generate a new dev secret") from None
    secret = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w") as file:
        file.write(secret)
    return secret


def jwt_secret(settings: Settings) -> str:
    if settings.jwt_secret:
        return settings.jwt_secret
    return dev_jwt_secret(settings.data_dir)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready when Redis and MongoDB both answer a ping."""
    services: Services = request.state.services
    checks: dict[str, str] = {}
    try:
        await services.redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        checks["redis"] = type(exc).__name__
    try:
        await request.state.mongo.admin.command("ping")
        checks["mongodb"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["mongodb"] = type(exc).__name__
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ready else "unavailable", **checks}, status_code=200 if ready else 503)


def rate_limits(settings: Settings) -> RateLimits:
    return RateLimits(
        enabled=settings.rate_limits == "on",
        send_message=Rule.parse(settings.rate_limit_send_message),
        upload_audio=Rule.parse(settings.rate_limit_upload_audio),
        search=Rule.parse(settings.rate_limit_search),
        retry_transcription=Rule.parse(settings.rate_limit_retry_transcription),
        register=Rule.parse(settings.rate_limit_register),
        login_free_failures=settings.login_free_failures,
        login_failure_window_seconds=settings.login_failure_window_seconds,
        login_max_backoff_seconds=settings.login_max_backoff_seconds,
    )


GC_THRESHOLDS = (20_000, 20, 100)
"""Python's defaults are (700, 10, 10)."""


def tune_garbage_collector() -> None:
    """Fewer, cheaper cyclic-GC passes: with the default thresholds, objects of requests still in
    flight at each young collection were promoted and soon made full collections run every few
    seconds, each stalling the event loop for ~130 ms with 1,000 WebSockets open (the fan-out's
    p99). Measured with 1,000 subscribers at 300 messages/s (`make bench` fan-out set-up): p99
    send→deliver 134-144 ms → 27-44 ms, and ~20% less API CPU. Everything built at start-up
    lives as long as the process, so it is frozen out of every collection."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def create_app(settings: Settings | None = None) -> ASGIApp:
    settings = settings or Settings()
    configure_logging(settings.log_level, settings.log_format)
    if not settings.redis_url or not settings.mongodb_url:
        raise ValueError("REDIS_URL and MONGODB_URL must be set (chattergram serve starts embedded servers when they are not)")
    tokens = TokenService(
        secret=jwt_secret(settings),
        ttl_seconds=settings.jwt_ttl_seconds,
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
    )
    schema = build_schema(
        extensions=[
            OperationEdge.factory(QueryLimits.build(
                max_depth=settings.max_query_depth,
                max_aliases=settings.max_aliases,
                max_tokens=settings.max_query_tokens,
            )),
        ],
        field_suggestions=settings.dev_mode,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, object]]:
        async with contextlib.AsyncExitStack() as stack:
            redis = await open_redis(settings.redis_url, max_connections=settings.redis_max_connections)  # type: ignore[arg-type]
            stack.push_async_callback(redis.aclose)
            mongo = await open_mongo(settings.mongodb_url, settings.mongodb_database)  # type: ignore[arg-type]
            stack.push_async_callback(mongo.close)

            keeper = HotWindowKeeper(
                redis,
                window_seconds=settings.hot_window_days * 86400,
                interval_seconds=settings.hot_window_trim_seconds,
            )
            await users.reconcile_mirror(redis)
            await keeper.restore()

            persister = Persister(redis, claim_idle_ms=int(settings.outbox_claim_idle_seconds * 1000))
            persister.start()
            stack.push_async_callback(persister.stop)
            keeper.start()
            stack.push_async_callback(keeper.stop)
            hub = PubSubHub(redis)
            hub.start()
            stack.push_async_callback(hub.stop)
            last_seen = users.LastSeenWriter()
            last_seen.start()
            stack.push_async_callback(last_seen.stop)  # after presence.stop: flushes its last writes
            presence = PresenceTracker(
                redis,
                ttl_seconds=settings.presence_ttl_seconds,
                heartbeat_seconds=settings.presence_heartbeat_seconds,
                on_offline=last_seen.record,
            )
            presence.start()
            stack.push_async_callback(presence.stop)

            messages = MessageStore(redis)
            conversation_store = ConversationStore(redis)
            stack.callback(conversation_store.close)
            audio = AudioStore(mongo[settings.mongodb_database])
            transcriber = await asyncio.to_thread(
                make_transcriber,
                settings.stt_engine,
                whisper_model=settings.whisper_model,
                deepgram_api_key=settings.deepgram_api_key,
                deepgram_url=settings.deepgram_url,
                deepgram_model=settings.deepgram_model,
                deepgram_timeout_seconds=settings.deepgram_timeout_seconds,
            )
            stack.push_async_callback(transcriber.close)
            worker = TranscriptionWorker(
                redis,
                messages=messages,
                audio=audio,
                transcriber=transcriber,
                concurrency=settings.transcription_concurrency,
                max_attempts=settings.transcription_max_attempts,
                retry_base_seconds=settings.transcription_retry_seconds,
                claim_idle_ms=int(settings.transcription_claim_idle_seconds * 1000),
            )
            await worker.start()
            stack.push_async_callback(worker.stop)

            services = Services(
                redis=redis,
                tokens=tokens,
                messages=messages,
                hub=hub,
                presence=presence,
                audio=audio,
                conversations=conversation_store,
                limiter=RateLimiter(redis),
                limits=rate_limits(settings),
                media_signer=MediaSigner.from_secret(tokens.secret, settings.media_url_ttl_seconds),
                max_audio_bytes=settings.max_audio_bytes,
                max_audio_seconds=settings.max_audio_seconds,
            )
            tune_garbage_collector()
            log.info("chattergram ready")
            yield {"services": services, "mongo": mongo, "settings": settings}

    graphql = graphql_app(
        schema,
        graphiql=settings.graphiql,
        init_timeout_seconds=settings.websocket_init_timeout_seconds,
        max_subscriptions_per_connection=settings.max_subscriptions_per_connection,
    )
    routes = [
        # GraphQLFastPath serves GET/POST and WebSockets on /graphql; this route answers the
        # other methods (405).
        Route("/graphql", graphql, methods=["GET", "POST"]),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics_endpoint),
        Route("/media/{audio_id}", media_endpoint, methods=["GET", "HEAD"]),
        *web_routes,
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.web_dir = settings.web_dir or DEFAULT_WEB_DIR
    edge: ASGIApp = GraphQLFastPath(graphql, app)
    # Room for the multipart envelope around the largest allowed recording.
    edge = BodySizeLimit(edge, limit=settings.max_json_body_bytes,
                         multipart_limit=settings.max_audio_bytes + MULTIPART_OVERHEAD_BYTES,
                         idle_timeout_seconds=settings.http_body_timeout_seconds)
    edge = SecurityHeaders(edge)
    if origins := [o.strip() for o in settings.cors_origins.split(",") if o.strip()]:
        edge = CORSMiddleware(edge, allow_origins=origins, allow_methods=["GET", "POST"],
                              allow_headers=["authorization", "content-type"], max_age=600)
    return edge


class GraphQLFastPath:
    """GraphQL (GET/POST and WebSocket on /graphql: nearly all traffic) goes straight to the
    view; everything else (lifespan, other routes, other methods) through Starlette.

    Starlette's router and its two exception middlewares took ~15% of the CPU of a sendMessage
    and wrapped every subscription event's send (~7% of the fan-out's CPU; `make bench`
    profiles), and add nothing there: the view answers every GraphQL error itself, and an
    exception escaping it gets uvicorn's 500 (or close 1011) like Starlette's."""

    def __init__(self, graphql: ASGIApp, app: Starlette) -> None:
        self.graphql = graphql
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if (kind == "websocket" or (kind == "http" and scope["method"] in ("GET", "POST"))) \
                and scope["path"] == "/graphql":
            scope["app"] = self.app
            await self.graphql(scope, receive, send)
        else:
            await self.app(scope, receive, send)
