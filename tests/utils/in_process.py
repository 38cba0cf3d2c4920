"""The app inside the test process: `create_app` with its lifespan, driven through httpx's ASGI
transport against real Redis and MongoDB. For rules that need no server process (validation,
authorisation, limits, idempotency): faster than a `chattergram serve` subprocess and as real."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from starlette.types import ASGIApp

from api.app import create_app
from api.dev_servers import start_redis
from api.settings import Settings
from tests.utils import fast_hashing
from tests.utils.graphql import GraphQLClient
from tests.utils.lifetimes import LIFETIMES, SHORT_SCOPES

BASE_URL = "http://testserver"


@dataclass(frozen=True)
class InProcessApp:
    app: ASGIApp
    redis_url: str
    mongodb_url: str
    database: str

    @contextlib.asynccontextmanager
    async def client(self) -> AsyncIterator[GraphQLClient]:
        """A GraphQL client on a fresh HTTP client (its own cookies and connection)."""
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, timeout=30) as http:
            yield GraphQLClient(http, f"{BASE_URL}/graphql")


class InProcessApps:
    """Starts in-process apps, each a deployment of its own (Redis and database) so its workers
    never take another deployment's jobs. One started for a test or a module is shut down once
    that has ended (at the next `start`), the rest by `aclose`."""

    def __init__(self, *, mongodb_base_url: str, work_dir: Path, jwt_secret: str) -> None:
        self.mongodb_base_url = mongodb_base_url.rstrip("/")
        self.work_dir = work_dir
        self.jwt_secret = jwt_secret
        self._stack = contextlib.AsyncExitStack()
        self._retired: list[contextlib.AsyncExitStack] = []  # apps whose test or module ended
        self._count = 0

    async def start(self, **settings: Any) -> InProcessApp:
        # An app built for a test or a module that has ended is shut down here (stopping it
        # needs the event loop, which a fixture's teardown does not have); the rest at `aclose`.
        await self._close_retired()
        self._count += 1
        home = self.work_dir / f"app-{self._count}"
        app_stack = contextlib.AsyncExitStack()
        try:
            redis_server = start_redis(home / "redis")
            app_stack.callback(redis_server.stop)
            database = f"in_process_{self._count}_{redis_server.port}"
            mongodb_url = f"{self.mongodb_base_url}/{database}"
            app = create_app(Settings(
                redis_url=redis_server.url, mongodb_url=mongodb_url, jwt_secret=self.jwt_secret,
                data_dir=home / "data",
                **{"stt_engine": "none", "rate_limits": "off", "log_level": "WARNING", **fast_hashing.SETTINGS,
                   **settings},
            ))
            manager = await app_stack.enter_async_context(
                LifespanManager(app, startup_timeout=60, shutdown_timeout=30))
        except BaseException:
            await app_stack.aclose()
            raise
        if not LIFETIMES.owned(functools.partial(self._retired.append, app_stack)):
            self._stack.push_async_callback(app_stack.aclose)
        return InProcessApp(manager.app, redis_server.url, mongodb_url, database)

    async def _close_retired(self) -> None:
        while self._retired:
            await self._retired.pop(0).aclose()

    async def aclose(self) -> None:
        for scope in SHORT_SCOPES:  # an interrupted session skips their teardowns
            LIFETIMES.end(scope)
        try:
            await self._close_retired()
        finally:
            await self._stack.aclose()
