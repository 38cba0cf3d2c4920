"""The real app served by uvicorn inside the test process (WebSockets included), with a Redis
of its own: for WebSocket tests that also look at the app's runtime (its presence, its hub)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from api.app import create_app
from api.dev_servers import free_port, start_redis
from api.settings import Settings
from resolvers.runtime import Runtime
from tests.utils import fast_hashing

# Pub/sub subscriptions every instance holds from start-up, per process: token revocations and
# block changes (the hub counts them with the WebSocket operations').
INSTANCE_LISTENERS = 2


@dataclass(frozen=True)
class ServedApp:
    port: int
    redis_url: str
    runtime: Runtime

    @property
    def graphql_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"


@contextlib.asynccontextmanager
async def served_app(
    *, mongodb_base_url: str, work_dir: Path, jwt_secret: str, **settings: Any
) -> AsyncIterator[ServedApp]:
    redis_server = start_redis(work_dir / "redis")
    try:
        app = create_app(Settings(
            redis_url=redis_server.url, mongodb_url=f"{mongodb_base_url.rstrip('/')}/served_{redis_server.port}",
            jwt_secret=jwt_secret, data_dir=work_dir / "data",
            **{"stt_engine": "none", "rate_limits": "off", "log_level": "WARNING", **fast_hashing.SETTINGS, **settings},
        ))
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                               ws_per_message_deflate=False, timeout_graceful_shutdown=2))
        serving = asyncio.create_task(server.serve())
        while not server.started:
            if serving.done():
                serving.result()  # start-up failed: raise its error
            await asyncio.sleep(0.02)
        try:
            yield ServedApp(port, redis_server.url, server.lifespan.state["runtime"])
        finally:
            server.should_exit = True
            await serving
    finally:
        redis_server.stop()
