"""The app in this test process: `create_app` with its lifespan, driven through httpx's ASGI
transport against real Redis and MongoDB. For rules that need no server process (validation,
authorisation, idempotency): faster than a `chattergram serve` subprocess and as real."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.types import ASGIApp

from api.app import create_app
from api.dev_servers import EmbeddedServers, start_redis
from api.settings import Settings
from tests.conftest import TEST_JWT_SECRET, mongodb_url
from tests.utils.graphql import GraphQLClient

IN_PROCESS_DATABASE = "chattergram_in_process"


@dataclass(frozen=True)
class InProcessApp:
    app: ASGIApp
    mongodb_url: str
    database: str


@pytest.fixture(scope="session")
async def in_process_app(
    dev_servers: EmbeddedServers, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[InProcessApp]:
    """A deployment of its own (Redis and database), so its workers never take the shared one's jobs."""
    redis_server = start_redis(tmp_path_factory.mktemp("in-process-redis"))
    database_url = mongodb_url(dev_servers, IN_PROCESS_DATABASE)
    settings = Settings(
        redis_url=redis_server.url,
        mongodb_url=database_url,
        jwt_secret=TEST_JWT_SECRET,
        data_dir=Path(tmp_path_factory.mktemp("in-process-data")),
        stt_engine="none",
        rate_limits="off",
        log_level="WARNING",
    )
    try:
        app = create_app(settings)
        async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager:
            yield InProcessApp(manager.app, database_url, IN_PROCESS_DATABASE)
    finally:
        redis_server.stop()


@pytest.fixture
async def gql(in_process_app: InProcessApp) -> AsyncIterator[GraphQLClient]:
    transport = httpx.ASGITransport(app=in_process_app.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=30) as client:
        yield GraphQLClient(client, "/graphql")
