"""The `chattergram` command: serve, services, export-schema, reports."""

from __future__ import annotations

import argparse
import faulthandler
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from api.dev_servers import STOP_TIMEOUT_SECONDS, EmbeddedServerError, EmbeddedServers, embedded_servers

if TYPE_CHECKING:
    from api.settings import Settings  # imported lazily at run time
    from storage.reports import StoredReport

GRACEFUL_SHUTDOWN_SECONDS = 10
"""How long uvicorn waits for open requests and background tasks after SIGTERM."""
APP_SHUTDOWN_SECONDS = 25
"""Allowance for the lifespan shutdown: the persister finishes its batch within 10 s, presence
and lastSeenAt get 5 s each (even with Redis or MongoDB gone), the other workers are cancelled."""
SHUTDOWN_BUDGET_SECONDS = GRACEFUL_SHUTDOWN_SECONDS + APP_SHUTDOWN_SECONDS + 2 * STOP_TIMEOUT_SECONDS
"""Worst case from SIGTERM to exit of `chattergram serve` with embedded servers."""


def _fail(message: str) -> int:
    print(f"chattergram: {message}", file=sys.stderr)
    return 2


def _load_settings() -> Settings | None:
    """The settings from the environment, or None after saying why they are invalid."""
    from api.settings import Settings

    try:
        return Settings()
    except ValidationError as exc:
        reasons = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        _fail(f"invalid configuration: {reasons}")
        return None


def _exit_on_signal(signum: int, frame: object) -> None:
    """SIGTERM/SIGINT outside uvicorn's own handling (before it starts, or re-raised by it after
    a graceful shutdown): leave through SystemExit so context managers stop what they started."""
    raise SystemExit(0)


def proxy_options(settings: Settings) -> tuple[bool, str | None]:
    """uvicorn's proxy-header handling, believing exactly TRUSTED_PROXIES (never its own default,
    FORWARDED_ALLOW_IPS or 127.0.0.1): from those peers it takes the client's address from
    X-Forwarded-For (the right-most hop that is not a trusted proxy, as resolvers.context does
    for in-process apps) and the scheme from X-Forwarded-Proto, so everything reading the ASGI
    scope (request URLs, logs) sees what the client used. No trusted proxy: off."""
    from resolvers.context import parse_trusted_proxies

    networks = parse_trusted_proxies(settings.trusted_proxies)
    if not networks:
        return False, None
    # Normalised (10.1.2.3/16 -> 10.1.0.0/16): uvicorn parses networks strictly.
    return True, ",".join(str(network) for network in networks)


def _uvicorn(host: str, port: int, workers: int, settings: Settings) -> None:
    import uvicorn

    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        import tempfile

        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="chattergram-metrics-")
    proxy_headers, forwarded_allow_ips = proxy_options(settings)
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="api.http_protocol:HeaderTimeoutProtocol",  # httptools with a deadline for request heads
        log_config=None,
        access_log=False,
        proxy_headers=proxy_headers,
        forwarded_allow_ips=forwarded_allow_ips,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        timeout_keep_alive=5,  # idle keep-alive connections are closed (slow clients)
        ws_max_size=settings.websocket_max_message_bytes,
        # A deflate context per socket costs tens of KB per idle subscription; events are small.
        ws_per_message_deflate=False,
        ws_ping_interval=20,
        ws_ping_timeout=20,
    )


def serve(args: argparse.Namespace) -> int:
    from api.app import dev_jwt_secret

    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGINT, _exit_on_signal)

    embedded = not os.environ.get("REDIS_URL") or not os.environ.get("MONGODB_URL")
    if not embedded:
        if (settings := _load_settings()) is None:
            return 2
        _uvicorn(args.host, args.port, args.workers, settings)
        return 0
    data_dir = Path(os.environ.get("DATA_DIR", "data")).resolve()
    try:
        with embedded_servers(data_dir) as services:
            print(f"embedded Redis at {services.redis_url}, MongoDB at {services.mongodb_url}", file=sys.stderr)
            os.environ.setdefault("REDIS_URL", services.redis_url)
            os.environ.setdefault("MONGODB_URL", services.mongodb_url)
            os.environ["DEV_MODE"] = "true"
            os.environ["DATA_DIR"] = str(data_dir)
            dev_jwt_secret(data_dir)  # generated once, before the workers start
            if (settings := _load_settings()) is None:
                return 2
            _uvicorn(args.host, args.port, args.workers, settings)
    except EmbeddedServerError as exc:
        return _fail(str(exc))
    return 0


def services(args: argparse.Namespace) -> int:
    data_dir = Path(os.environ.get("DATA_DIR", "data")).resolve()
    stop = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        with embedded_servers(data_dir, redis_port=args.redis_port, mongo_port=args.mongo_port) as running:
            print(f"REDIS_URL={running.redis_url}", flush=True)
            print(f"MONGODB_URL={running.mongodb_url}", flush=True)
            return _supervise(running, lambda: stop)
    except EmbeddedServerError as exc:
        return _fail(str(exc))


def _supervise(running: EmbeddedServers, stopping: Callable[[], bool]) -> int:
    while not stopping():
        for server in (running.redis, running.mongo):
            if not server.alive():
                return _fail(
                    f"{server.name} exited unexpectedly (code {server.process.returncode}); see {server.log_file}"
                )
        time.sleep(0.2)
    return 0


def export_schema(args: argparse.Namespace) -> int:
    from schema.root import schema

    sdl = schema.as_str() + "\n"
    path = Path(args.path)
    if args.check:
        current = path.read_text() if path.exists() else ""
        if current != sdl:
            return _fail(f"{path} is stale: run 'chattergram export-schema' and commit it")
        return 0
    path.write_text(sdl)
    print(f"wrote {path}")
    return 0


def reports(args: argparse.Namespace) -> int:
    """Print the newest reported messages from MONGODB_URL's database, newest first."""
    import asyncio

    from pymongo import AsyncMongoClient
    from pymongo.errors import PyMongoError

    from api.report_listing import json_lines, table
    from api.settings import Settings
    from storage.reports import ReportStore

    url = os.environ.get("MONGODB_URL")
    if not url:
        return _fail("set MONGODB_URL to the server's database (chattergram serve prints the embedded one)")
    database = Settings.model_construct(mongodb_url=url).mongodb_database  # the server's rule, unvalidated

    async def newest() -> list[StoredReport]:
        client: AsyncMongoClient = AsyncMongoClient(url, tz_aware=True, serverSelectionTimeoutMS=10_000)
        try:
            return await ReportStore(client[database]["reports"]).newest(args.limit)
        finally:
            await client.close()

    try:
        found = asyncio.run(newest())
    except PyMongoError as exc:  # the operator reads why, not a traceback
        return _fail(f"cannot read reports: {exc}")
    print(json_lines(found) if args.json else table(found), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chattergram", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser(
        "serve", help="serve the API (starts embedded servers when REDIS_URL/MONGODB_URL are unset)"
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1)
    p.set_defaults(handler=serve)

    p = commands.add_parser("services", help="run only the embedded Redis and MongoDB-wire servers")
    p.add_argument("--redis-port", type=int, default=None)
    p.add_argument("--mongo-port", type=int, default=None)
    p.set_defaults(handler=services)

    p = commands.add_parser("export-schema", help="write schema.graphql (or --check that it is current)")
    p.add_argument("--check", action="store_true")
    p.add_argument("--path", default="schema.graphql")
    p.set_defaults(handler=export_schema)

    p = commands.add_parser("reports", help="list reported messages, newest first (reads MONGODB_URL)")
    p.add_argument("--limit", type=int, default=50, help="how many (default 50)")
    p.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")
    p.set_defaults(handler=reports)
    return parser


def main(argv: list[str] | None = None) -> int:
    # `kill -USR1 <pid>` prints every thread's stack to stderr: a stuck shutdown names its culprit.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
