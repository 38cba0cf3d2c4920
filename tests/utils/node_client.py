"""Run the real JavaScript `graphql-ws` client under Node from a test.

The client is pinned in tests/js_client/ (package.json + package-lock.json) and driven by
tests/js_client/subscribe.mjs, which prints one JSON object per line (see that file for the
protocol). `ensure_js_client()` installs it with `npm ci` into <repo>/.cache/js-client/
(gitignored), only when node_modules is missing or package.json, the lock file or the Node
version changed. `NodeSubscriber` runs one subscription as a subprocess:

    async with NodeSubscriber(app.ws_url, token, "subscription { count(target: 3) }",
                              max_events=3) as sub:
        await sub.wait_for("connected", timeout=15)
        # ... trigger events here ...
        first = await sub.wait_for("next", timeout=10)
        assert first["payload"]["data"] == {"count": 0}
        assert await sub.wait(timeout=10) == 0  # exit 0: max_events received

"connected" means the server acknowledged the connection; the subscribe frame goes out right
after it, and graphql-transport-ws has no "subscription started" acknowledgement, so an event
published the instant "connected" arrives can still race the server-side subscription set-up.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import functools
import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
JS_CLIENT_SRC = REPO_ROOT / "tests" / "js_client"
CACHE_DIR = REPO_ROOT / ".cache" / "js-client"
SCRIPT_NAME = "subscribe.mjs"

# Files whose content decides whether `npm ci` must run again.
INSTALL_INPUTS = ("package.json", "package-lock.json")
STAMP_NAME = ".npm-ci.stamp"
NPM_CI_TIMEOUT = 300
STDOUT_LINE_LIMIT = 16 * 1024 * 1024  # one `next` payload per line; be generous
STDERR_TAIL_BYTES = 8192


def _require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"`{name}` is not on PATH: the graphql-ws JavaScript client check needs Node.js 20+ "
            "and npm. Install them (e.g. `apt-get install nodejs npm`) and re-run.",
            pytrace=False,
        )
    return path


def _tool_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "NO_COLOR": "1",
            "FORCE_COLOR": "0",
            "npm_config_update_notifier": "false",
            "npm_config_fund": "false",
            "npm_config_audit": "false",
        }
    )
    return env


@functools.cache
def _node_version(node: str) -> str:
    proc = subprocess.run(
        [node, "--version"], capture_output=True, text=True, timeout=30, check=False,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        pytest.fail(f"`{node} --version` failed (exit {proc.returncode}):\n{proc.stderr}", pytrace=False)
    return proc.stdout.strip()


def _install_fingerprint(node: str) -> str:
    digest = hashlib.sha256()
    for name in INSTALL_INPUTS:
        digest.update(name.encode() + b"\0" + (JS_CLIENT_SRC / name).read_bytes() + b"\0")
    digest.update(_node_version(node).encode())
    return digest.hexdigest()


def _copy_if_changed(name: str) -> None:
    src = JS_CLIENT_SRC / name
    dst = CACHE_DIR / name
    data = src.read_bytes()
    if dst.exists() and dst.read_bytes() == data:
        return
    # Write-then-rename, so a node process starting concurrently never reads half a file.
    tmp = dst.with_name(f".{name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, dst)


def _npm_ci(npm: str) -> None:
    cmd = [npm, "ci", "--no-audit", "--no-fund"]
    try:
        proc = subprocess.run(
            cmd, cwd=CACHE_DIR, env=_tool_env(), capture_output=True, text=True,
            timeout=NPM_CI_TIMEOUT, stdin=subprocess.DEVNULL, check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"`npm ci` in {CACHE_DIR} timed out after {NPM_CI_TIMEOUT}s\n"
            f"--- stdout ---\n{exc.stdout!r}\n--- stderr ---\n{exc.stderr!r}",
            pytrace=False,
        )
    if proc.returncode != 0:
        pytest.fail(
            f"`npm ci` in {CACHE_DIR} failed (exit {proc.returncode})\n"
            f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}",
            pytrace=False,
        )


def ensure_js_client() -> Path:
    """Install the pinned graphql-ws client into <repo>/.cache/js-client/ and return that dir.

    `npm ci` runs only when node_modules is missing or the stamp (package.json,
    package-lock.json, Node version) changed; subscribe.mjs is re-copied on every call.
    A file lock serialises parallel test processes sharing the cache.
    """
    node = _require_tool("node")
    npm = _require_tool("npm")
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            for name in INSTALL_INPUTS:
                _copy_if_changed(name)
            _copy_if_changed(SCRIPT_NAME)
            stamp = CACHE_DIR / STAMP_NAME
            fingerprint = _install_fingerprint(node)
            installed = (CACHE_DIR / "node_modules" / "graphql-ws" / "package.json").is_file()
            if not (installed and stamp.is_file() and stamp.read_text().strip() == fingerprint):
                stamp.unlink(missing_ok=True)
                _npm_ci(npm)
                stamp.write_text(fingerprint + "\n")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return CACHE_DIR


class NodeSubscriber:
    """`node subscribe.mjs <ws_url> <token> <query> <max_events> <timeout>` as an async context
    manager. Read its JSON lines with `next_line()` / `wait_for()`; on exit the process is
    terminated (if still running) and reaped.

    `token=""` sends empty connectionParams. `max_events=0` means no limit, `timeout=0` none.
    """

    def __init__(
        self,
        ws_url: str,
        token: str,
        query: str,
        max_events: int = 1,
        timeout: float = 30,
        *,
        variables: dict[str, Any] | None = None,
    ) -> None:
        self.ws_url = ws_url
        self.token = token
        self.query = query
        self.max_events = max_events
        self.timeout = timeout
        self.variables = variables
        self.events: list[dict[str, Any]] = []  # every line read so far, in order
        self.process: asyncio.subprocess.Process | None = None
        self._stderr_tail: collections.deque[bytes] = collections.deque()
        self._stderr_size = 0
        self._stderr_task: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> NodeSubscriber:
        directory = ensure_js_client()
        node = _require_tool("node")
        args = [
            str(directory / SCRIPT_NAME), self.ws_url, self.token, self.query,
            str(int(self.max_events)), _format_number(self.timeout),
        ]
        if self.variables is not None:
            args.append(json.dumps(self.variables))
        self.process = await asyncio.create_subprocess_exec(
            node, *args,
            cwd=directory,
            env=_tool_env(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=STDOUT_LINE_LIMIT,
        )
        self._stderr_task = asyncio.create_task(self._drain_stderr())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        process = self.process
        if process is None:
            return
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 5)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        # Read both pipes to EOF so their transports close before the loop does.
        assert process.stdout is not None
        await process.stdout.read()
        if self._stderr_task is not None:
            await self._stderr_task

    async def _drain_stderr(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        while chunk := await self.process.stderr.read(4096):
            self._stderr_tail.append(chunk)
            self._stderr_size += len(chunk)
            while self._stderr_size - len(self._stderr_tail[0]) >= STDERR_TAIL_BYTES:
                self._stderr_size -= len(self._stderr_tail.popleft())

    # -- reading -----------------------------------------------------------------------------

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.returncode

    def stderr_tail(self) -> str:
        return b"".join(self._stderr_tail)[-STDERR_TAIL_BYTES:].decode(errors="replace")

    def _describe(self) -> str:
        seen = "\n".join(json.dumps(event) for event in self.events[-20:]) or "(none)"
        return (
            f"\nnode subscribe.mjs {self.ws_url} (returncode={self.returncode})"
            f"\n--- events so far (last 20) ---\n{seen}"
            f"\n--- stderr tail ---\n{self.stderr_tail() or '(empty)'}"
        )

    async def next_line(self, timeout: float) -> dict[str, Any]:
        """The next JSON line from subscribe.mjs; AssertionError on timeout or end of output."""
        if self.process is None or self.process.stdout is None:
            raise RuntimeError("NodeSubscriber is not started: use `async with`")
        try:
            raw = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        except TimeoutError:
            raise AssertionError(f"no output from the graphql-ws client within {timeout}s"
                                 + self._describe()) from None
        if not raw:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.process.wait(), 5)
            if self._stderr_task is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self._stderr_task), 2)
            raise AssertionError("the graphql-ws client exited with no further output"
                                 + self._describe())
        try:
            event = json.loads(raw)
        except json.JSONDecodeError:
            raise AssertionError(f"the graphql-ws client printed a non-JSON line: {raw!r}"
                                 + self._describe()) from None
        if not isinstance(event, dict) or "event" not in event:
            raise AssertionError(f"unexpected line from the graphql-ws client: {raw!r}"
                                 + self._describe())
        self.events.append(event)
        return event

    async def wait_for(self, event: str, timeout: float) -> dict[str, Any]:
        """Skip lines until one whose "event" is `event`; AssertionError on timeout / exit."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {event!r} event from the graphql-ws client within "
                                     f"{timeout}s" + self._describe())
            try:
                line = await self.next_line(remaining)
            except AssertionError as exc:
                raise AssertionError(f"while waiting for {event!r}: {exc}") from None
            if line["event"] == event:
                return line

    async def wait(self, timeout: float) -> int:
        """Wait for subscribe.mjs to exit and return its exit code (0 = max_events received,
        1 = error/close, 2 = its own timeout, 3 = completed early)."""
        if self.process is None:
            raise RuntimeError("NodeSubscriber is not started: use `async with`")
        try:
            return await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"the graphql-ws client did not exit within {timeout}s"
                                 + self._describe()) from None


def _format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
