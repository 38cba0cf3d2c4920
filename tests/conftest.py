"""Real servers for the whole suite: embedded Redis (Search + JSON) and the MongoDB-wire
server, started once per session by the same launcher `chattergram services` uses, and one
running app shared by tests that need no special set-up (and a second instance of it for tests
across instances). Apps and Redis servers built for one test or one module are stopped when it
ends (tests/utils/lifetimes.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from api.app_server import AppServer
from api.dev_servers import EmbeddedServers, ManagedServer, embedded_servers, start_redis
from tests.utils import fast_hashing
from tests.utils.graphql import GraphQLClient
from tests.utils.in_process import InProcessApp, InProcessApps
from tests.utils.lifetimes import LIFETIMES, SHORT_SCOPES


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.is_registered(LIFETIMES):
        config.pluginmanager.register(LIFETIMES, "chattergram-lifetimes")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules marked slow run first: `make test` hands whole modules to its two processes in
    this order (pytest-xdist, loadscope), so a long one started last would leave one idle."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: order kept otherwise


@pytest.fixture(autouse=True)
def _stop_what_the_test_started() -> Iterator[None]:
    yield
    LIFETIMES.end("function")


@pytest.fixture(scope="module", autouse=True)
def _stop_what_the_module_started() -> Iterator[None]:
    yield
    LIFETIMES.end("module")


@pytest.fixture(scope="session")
def dev_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServers]:
    with embedded_servers(tmp_path_factory.mktemp("dev-servers")) as running:
        yield running


def mongodb_url(dev_servers: EmbeddedServers, database: str) -> str:
    base = dev_servers.mongodb_url.rsplit("/", 1)[0]
    return f"{base}/{database}"


def shared_mongodb_url(dev_servers: EmbeddedServers) -> str:
    return mongodb_url(dev_servers, SHARED_DATABASE)


SHARED_DATABASE = "chattergram_shared"
TEST_JWT_SECRET = "test-secret-" + "x" * 60


@pytest.fixture(scope="session")
def app_factory(
    dev_servers: EmbeddedServers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., AppServer]]:
    """Build (not start) app servers; each is stopped when the test or module that built it
    ends (one built by a session-scoped fixture, like `app`, at the end of the session).

    Apps on the session's Redis all use the session's database: one Redis serves one
    deployment (its outbox is drained by every instance into that deployment's MongoDB).
    A test that needs another database brings its own Redis too.
    """
    created: list[AppServer] = []

    def make(*, redis_url: str | None = None, mongodb_url: str | None = None, workers: int = 1,
             **env: str) -> AppServer:
        if (redis_url is None) != (mongodb_url is None):
            raise ValueError("give both redis_url and mongodb_url (a deployment of its own) or neither")
        logs = tmp_path_factory.mktemp("app")
        server = AppServer(
            env={
                "REDIS_URL": redis_url or dev_servers.redis_url,
                "MONGODB_URL": mongodb_url or shared_mongodb_url(dev_servers),
                "JWT_SECRET": TEST_JWT_SECRET,
                "DATA_DIR": str(logs / "data"),
                "LOG_LEVEL": "INFO",
                # The suite registers hundreds of users from one IP and sends thousands of
                # messages; tests/api/test_limits.py runs its own app with limits on.
                "RATE_LIMITS": "off",
                **fast_hashing.ENV,
                **env,
            },
            log_path=logs / "app.log",
            workers=workers,
        )
        if not LIFETIMES.owned(server.stop):
            created.append(server)
        return server

    yield make
    for scope in SHORT_SCOPES:  # an interrupted session skips their teardowns
        LIFETIMES.end(scope)
    for server in created:
        server.stop()


@pytest.fixture(scope="session")
def own_deployment(
    dev_servers: EmbeddedServers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[], dict[str, str]]]:
    """`app_factory(**own_deployment())` builds an app with a Redis of its own and a fresh
    database: for apps configured unlike the shared one (another STT engine, tiny limits),
    which must not take the shared deployment's queued work."""
    started: list[ManagedServer] = []
    count = 0

    def make() -> dict[str, str]:
        nonlocal count
        count += 1
        redis_server = start_redis(tmp_path_factory.mktemp("redis"))
        if not LIFETIMES.owned(redis_server.stop):
            started.append(redis_server)
        return {"redis_url": redis_server.url,
                "mongodb_url": mongodb_url(dev_servers, f"deployment_{count}_{redis_server.port}")}

    yield make
    for scope in SHORT_SCOPES:  # an interrupted session skips their teardowns
        LIFETIMES.end(scope)
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
async def in_process_apps(
    dev_servers: EmbeddedServers, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[InProcessApps]:
    """Start apps inside the test process, each with a Redis and a database of its own."""
    apps = InProcessApps(mongodb_base_url=dev_servers.mongodb_url.rsplit("/", 1)[0],
                         work_dir=tmp_path_factory.mktemp("in-process"), jwt_secret=TEST_JWT_SECRET)
    yield apps
    await apps.aclose()


@pytest.fixture(scope="session")
async def in_process_app(in_process_apps: InProcessApps) -> InProcessApp:
    """The shared in-process app (rate limits off, no transcription)."""
    return await in_process_apps.start()


@pytest.fixture(scope="session")
def app(app_factory: Callable[..., AppServer]) -> AppServer:
    return app_factory().start()


@pytest.fixture(scope="session")
def second_app(app_factory: Callable[..., AppServer]) -> AppServer:
    """Another instance of the shared app's deployment, configured alike: for what must cross
    instances (an event published by one reaching subscribers of the other). Tests that stop,
    kill or configure an instance build their own."""
    return app_factory().start()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


@pytest.fixture
async def gql(app: AppServer, http: httpx.AsyncClient) -> GraphQLClient:
    return GraphQLClient(http, app.graphql_url)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]
