"""The app's lifespan ends: every background worker stops within the shutdown allowance, even
with its first or its blocking Redis read in flight (a cancelled XREADGROUP had hung the shutdown
forever).

Runs in a process of its own, as a server's lifespan does: an otherwise idle event loop."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from api.cli import APP_SHUTDOWN_SECONDS
from api.dev_servers import EmbeddedServers, start_redis
from tests.conftest import TEST_JWT_SECRET, mongodb_url

pytestmark = pytest.mark.slow  # started first by `make test` (tests/conftest.py)

LIFESPAN = textwrap.dedent("""
    import asyncio, sys, time
    from pathlib import Path
    from api.app import create_app
    from api.settings import Settings

    async def main() -> None:
        redis_url, mongodb_url, secret, data_dir, allowance, pause = sys.argv[1:7]
        app = create_app(Settings(redis_url=redis_url, mongodb_url=mongodb_url, jwt_secret=secret,
                                  data_dir=Path(data_dir), stt_engine="none", log_level="WARNING"))
        inbox, outbox = asyncio.Queue(), asyncio.Queue()
        lifespan = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
                                           inbox.get, outbox.put))
        await inbox.put({"type": "lifespan.startup"})
        assert (await outbox.get())["type"] == "lifespan.startup.complete"
        await asyncio.sleep(float(pause))  # the workers' first reads, or their blocking reads, in flight
        started = time.monotonic()
        await inbox.put({"type": "lifespan.shutdown"})
        done, _ = await asyncio.wait({lifespan}, timeout=float(allowance))
        print("stopped" if done else "hung", round(time.monotonic() - started, 2), flush=True)

    asyncio.run(main())
""")


def test_lifespan_shutdown_finishes_within_its_allowance(dev_servers: EmbeddedServers, tmp_path: Path) -> None:
    redis_server = start_redis(tmp_path / "redis")
    try:
        for round_, pause in enumerate((0.0, 0.0, 0.1, 1.5)):
            result = subprocess.run(
                [sys.executable, "-c", LIFESPAN, redis_server.url, mongodb_url(dev_servers, f"shutdown_{round_}"),
                 TEST_JWT_SECRET, str(tmp_path / "data"), str(APP_SHUTDOWN_SECONDS), str(pause)],
                capture_output=True, text=True, timeout=APP_SHUTDOWN_SECONDS + 60,
            )
            assert result.returncode == 0, result.stderr[-3000:]
            outcome = result.stdout.split()
            assert outcome[0] == "stopped", f"round {round_}: shutdown still running after {outcome[1]} s"
    finally:
        redis_server.stop()
