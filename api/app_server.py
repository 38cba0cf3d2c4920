"""Run the real app (`chattergram serve`) as a child process on a free port, as users do: the
launcher of the end-to-end tests and of the benchmarks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from api.cli import SHUTDOWN_BUDGET_SECONDS
from api.dev_servers import free_port

REPO = Path(__file__).resolve().parents[1]
CHATTERGRAM = Path(sys.executable).with_name("chattergram")


@dataclass
class AppServer:
    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    workers: int = 1
    base_env: dict[str, str] | None = None  # default: this process's environment
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def graphql_url(self) -> str:
        return f"{self.url}/graphql"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    def command(self) -> list[str]:
        return [str(CHATTERGRAM), "serve", "--port", str(self.port), "--workers", str(self.workers)]

    def is_ready(self) -> bool:
        return httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200

    def start(self, timeout: float = 90.0) -> AppServer:
        env = {**(os.environ if self.base_env is None else self.base_env), **self.env}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command(),
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.command()[:3]} exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            try:
                if self.is_ready():
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"{self.command()[:3]} did not become ready:\n{self.log()[-3000:]}")

    def stop(self, timeout: float = SHUTDOWN_BUDGET_SECONDS) -> int:
        """SIGTERM and wait, as an orchestrator would. Past `timeout` the app's thread stacks are
        dumped into its log (SIGUSR1, see api.cli) before it is killed."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.send_signal(signal.SIGUSR1)
                time.sleep(1)
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def restart(self) -> AppServer:
        self.stop()
        return self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def start_together(*servers: AppServer, timeout: float = 90.0) -> tuple[AppServer, ...]:
    """Start several apps at once: each start mostly waits on its imports and lifespan, so two
    starts side by side take little longer than one (instances of a deployment start so anyway)."""
    with ThreadPoolExecutor(len(servers)) as pool:
        return tuple(pool.map(lambda server: server.start(timeout), servers))
