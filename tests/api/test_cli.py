"""The `chattergram` command: services, serve with embedded servers, export-schema."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pymongo
import pytest
import redis

from api.app_server import CHATTERGRAM, REPO, AppServer
from api.dev_servers import free_port
from tests.utils.graphql import ME, GraphQLClient, register

pytestmark = pytest.mark.slow  # started first by `make test` (tests/conftest.py)

CLEAN_ENV = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "MONGODB_URL", "JWT_SECRET", "DEV_MODE"}}


def _pid_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def _pids(data_dir: Path) -> list[int]:
    return [int((data_dir / name / f"{name}.pid").read_text()) for name in ("redis", "mongo")]


def test_services_prints_urls_and_stops_on_sigterm(tmp_path: Path) -> None:
    with subprocess.Popen(
        [str(CHATTERGRAM), "services"],
        env={**CLEAN_ENV, "DATA_DIR": str(tmp_path)},
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO,
    ) as process:
        lines = [process.stdout.readline().strip() for _ in range(2)]  # type: ignore[union-attr]  # stdout=PIPE
        urls = dict(line.split("=", 1) for line in lines)
        assert set(urls) == {"REDIS_URL", "MONGODB_URL"}, lines
        client = redis.Redis.from_url(urls["REDIS_URL"])
        assert client.ping()
        modules = {m[b"name"] for m in client.module_list()}
        assert {b"search", b"ReJSON"} <= modules
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        client.close()
        with pymongo.MongoClient(urls["MONGODB_URL"], serverSelectionTimeoutMS=5000) as mongo:
            assert mongo.admin.command("ping")["ok"] == 1
        pids = _pids(tmp_path)
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
        assert all(_pid_gone(pid) for pid in pids), "no orphan servers"
        assert not (tmp_path / "redis" / "redis.pid").exists()


def test_services_refuses_a_data_dir_in_use_and_clears_stale_pid_files(tmp_path: Path) -> None:
    (tmp_path / "redis").mkdir()
    (tmp_path / "redis" / "redis.pid").write_text("999999999\n")  # stale: no such process
    with subprocess.Popen([str(CHATTERGRAM), "services"], env={**CLEAN_ENV, "DATA_DIR": str(tmp_path)},
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO) as first:
        try:
            assert first.stdout.readline().startswith("REDIS_URL=")  # type: ignore[union-attr]  # stdout=PIPE
            second = subprocess.run([str(CHATTERGRAM), "services"], env={**CLEAN_ENV, "DATA_DIR": str(tmp_path)},
                                    capture_output=True, text=True, timeout=60, cwd=REPO)
            assert second.returncode == 2
            assert "in use by process" in second.stderr
        finally:
            first.send_signal(signal.SIGINT)
            assert first.wait(30) == 0


async def test_serve_without_urls_starts_and_stops_embedded_servers(tmp_path: Path) -> None:
    server = AppServer(env={"DATA_DIR": str(tmp_path / "data")}, log_path=tmp_path / "app.log",
                       base_env=CLEAN_ENV)
    server.start()
    try:
        pids = _pids(tmp_path / "data")
        secret_file = tmp_path / "data" / "jwt_secret"
        assert secret_file.stat().st_mode & 0o777 == 0o600
        async with httpx.AsyncClient(timeout=30) as http:
            gql = GraphQLClient(http, server.graphql_url)
            user = await register(gql)
            assert server.stop() == 0, f"no clean exit after SIGTERM:\n{server.log()[-6000:]}"
            assert all(_pid_gone(pid) for pid in pids), "embedded servers stopped with the app"
            server.start()
            # Same data, same dev secret: the old token still works.
            assert (await gql.ok(ME, token=user.token))["me"]["id"] == user.id
    finally:
        server.stop()


def test_serve_refuses_to_start_without_a_strong_secret_outside_dev_mode(tmp_path: Path) -> None:
    for secret in (None, "too-short"):
        env = {**CLEAN_ENV, "REDIS_URL": "redis://127.0.0.1:1/0", "MONGODB_URL": "mongodb://127.0.0.1:1/x",
               "DATA_DIR": str(tmp_path)}
        if secret:
            env["JWT_SECRET"] = secret
        result = subprocess.run([str(CHATTERGRAM), "serve", "--port", str(free_port())], env=env,
                                capture_output=True, text=True, timeout=60, cwd=REPO)
        assert result.returncode == 2
        assert "JWT_SECRET" in result.stderr


def test_export_schema_check_detects_staleness(tmp_path: Path) -> None:
    current = subprocess.run([str(CHATTERGRAM), "export-schema", "--check"], cwd=REPO,
                             capture_output=True, text=True, timeout=60)
    assert current.returncode == 0, f"schema.graphql is stale: {current.stderr}"
    stale = tmp_path / "schema.graphql"
    stale.write_text((REPO / "schema.graphql").read_text().replace("username: String!", "username: String", 1))
    result = subprocess.run([str(CHATTERGRAM), "export-schema", "--check", "--path", str(stale)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "stale" in result.stderr
