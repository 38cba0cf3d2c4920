"""The ASGI application factory and its lifespan."""

from __future__ import annotations

import contextlib
import gc
import logging
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from api import startup
from api.graphql import OperationEdge, QueryLimits, graphql_app
from api.limits import BodySizeLimit
from api.logs import RequestContext, configure_logging
from api.media import media_endpoint
from api.metrics import metrics_endpoint
from api.security import SecurityHeaders
from api.settings import Settings
from api.web import DEFAULT_WEB_DIR, web_routes
from resolvers.tokens import TokenService
from schema.root import build_schema

log = logging.getLogger("chattergram.app")

MULTIPART_OVERHEAD_BYTES = 64 * 1024


def dev_jwt_secret(data_dir: Path) -> str:
    """A random secret generated once and kept under DATA_DIR, so dev tokens survive restarts."""
    return startup.dev_secret_file(data_dir / "jwt_secret", lambda: secrets.token_urlsafe(48))


def jwt_secret(settings: Settings) -> str:
    if settings.jwt_secret:
        return settings.jwt_secret
    return dev_jwt_secret(settings.data_dir)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready when Redis and MongoDB both answer a ping."""
    checks: dict[str, str] = {}
    try:
        await request.state.redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        checks["redis"] = type(exc).__name__
    try:
        await request.state.mongo.admin.command("ping")
        checks["mongodb"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        checks["mongodb"] = type(exc).__name__
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ready else "unavailable", **checks}, status_code=200 if ready else 503)


GC_THRESHOLDS = (20_000, 20, 100)
"""Python's defaults are (700, 10, 10)."""


def tune_garbage_collector() -> None:
    """Fewer, cheaper cyclic-GC passes: with the defaults, objects of requests in flight get
    promoted and full collections stall the event loop of a busy server every few seconds.
    What start-up built lives as long as the process, so it is frozen out of every collection."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def create_app(settings: Settings | None = None) -> ASGIApp:
    settings = settings or Settings()
    configure_logging(settings.log_level, settings.log_format)
    settings.database_urls()  # fail now, not at the first request
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
            started = await startup.start(settings, tokens, stack)
            tune_garbage_collector()
            log.info("chattergram ready")
            yield {"runtime": started.runtime, "redis": started.redis, "mongo": started.mongo}

    graphql = graphql_app(
        schema,
        graphiql=settings.graphiql,
        init_timeout_seconds=settings.websocket_init_timeout_seconds,
        max_subscriptions_per_connection=settings.max_subscriptions_per_connection,
        allowed_origins=settings.allowed_origins,
    )
    web_dir = settings.web_dir or DEFAULT_WEB_DIR
    routes = [
        # GraphQLFastPath serves GET/POST and WebSockets on /graphql; this route answers the
        # other methods (405).
        Route("/graphql", graphql, methods=["GET", "POST"]),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics_endpoint),
        Route("/media/{audio_id}", media_endpoint, methods=["GET", "HEAD"]),
        *web_routes(web_dir),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.web_dir = web_dir
    edge: ASGIApp = GraphQLFastPath(graphql, app)
    # Room for the multipart envelope around the largest allowed recording.
    edge = BodySizeLimit(edge, limit=settings.max_json_body_bytes,
                         multipart_limit=settings.max_audio_bytes + MULTIPART_OVERHEAD_BYTES,
                         idle_timeout_seconds=settings.http_body_timeout_seconds)
    edge = SecurityHeaders(edge)
    if origins := settings.allowed_origins:
        edge = CORSMiddleware(edge, allow_origins=origins, allow_methods=["GET", "POST"],
                              allow_headers=settings.allowed_headers, expose_headers=["X-Request-ID"],
                              max_age=600)
    # Outermost: every response (CORS preflights and refusals included) carries the request id.
    return RequestContext(edge)


class GraphQLFastPath:
    """GraphQL (GET/POST and WebSocket on /graphql: nearly all traffic) goes straight to the
    view; everything else (lifespan, other routes, other methods) through Starlette.

    Starlette's router and exception middlewares cost a noticeable share of every request's and
    every subscription event's CPU and add nothing there: the view answers every GraphQL error
    itself, and an exception escaping it gets uvicorn's 500 (or close 1011) like Starlette's."""

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
