"""Processes of a benchmark run: the API (`chattergram serve`), the ceiling app, wrk, and
what the report needs to know about them (worker pids, resident memory)."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from api.app_server import AppServer

REPO = Path(__file__).resolve().parents[1]
LUA_SCRIPT = Path(__file__).with_name("graphql.lua")


def raise_fd_limit() -> None:
    """1,000 client sockets plus the servers' own: lift the soft limit to the hard one
    (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def children(pid: int) -> list[int]:
    found: list[int] = []
    task_dir = Path(f"/proc/{pid}/task")
    try:
        for task in task_dir.iterdir():
            text = (task / "children").read_text().split()
            found += [int(c) for c in text]
    except OSError:
        pass
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    try:
        rest = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


class Server(AppServer):
    """The tests' launcher plus what the report reads: the uvicorn worker processes, their
    resident memory and CPU time. Ready once it answers and all its workers are up."""

    def expected_workers(self) -> int:
        return self.workers if self.workers > 1 else 0

    def worker_pids(self) -> list[int]:
        """uvicorn's worker processes (multiprocessing spawn children of the server process);
        with one worker, the server process itself serves."""
        if self.process is None:
            return []
        pids = [c for c in children(self.process.pid) if "spawn_main" in cmdline(c)]
        return pids if self.expected_workers() else [self.process.pid]

    def is_ready(self) -> bool:
        return super().is_ready() and len(self.worker_pids()) >= self.expected_workers()

    def rss_kb(self) -> int:
        return sum(rss_kb(p) for p in self.worker_pids())

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(p) for p in self.worker_pids())


class CeilingServer(Server):
    """bench/ceiling_app.py, ready when its mutation schema answers."""

    def command(self) -> list[str]:
        return [sys.executable, "-m", "bench.ceiling_app", "--workers", str(self.workers), "--port", str(self.port)]

    def is_ready(self) -> bool:
        answered = httpx.post(self.graphql_url, json={"query": "{ hello }"}, timeout=1).status_code == 200
        return answered and len(self.worker_pids()) >= self.expected_workers()


def api_server(*, redis_url: str, mongodb_url: str, jwt_secret: str, workers: int, log_path: Path,
               data_dir: Path, **extra_env: str) -> Server:
    env = {
        "REDIS_URL": redis_url,
        "MONGODB_URL": mongodb_url,
        "JWT_SECRET": jwt_secret,
        "RATE_LIMITS": "off",  # 1,000 users from one IP, far above the per-user send limit
        "STT_ENGINE": "none",  # no transcription work during the HTTP benchmarks
        "LOG_LEVEL": "WARNING",  # one log line per request costs CPU; the report says so
        "DATA_DIR": str(data_dir),
        **extra_env,
    }
    return Server(env=env, log_path=log_path, workers=workers)


def ceiling_server(*, redis_url: str, workers: int, log_path: Path) -> CeilingServer:
    return CeilingServer(env={"CEILING_REDIS_URL": redis_url}, log_path=log_path, workers=workers)


def run_wrk(url: str, *, tokens: Path, connections: int, threads: int, duration_s: float, mode: str = "send",
            cap: int = 0, ramp_ms: int = 0, timeout_s: float = 2.0) -> dict:
    """Run wrk with bench/graphql.lua; returns its WRKJSON summary plus derived figures."""
    threads = max(1, min(threads, connections))
    argv = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration_s))}s", "--timeout", f"{timeout_s:g}s",
        "--latency", "-s", str(LUA_SCRIPT), url, "--",
        f"tokens={tokens}", f"threads={threads}", f"conns={connections // threads}", f"mode={mode}",
        f"cap={cap}", f"ramp_ms={ramp_ms}",
    ]
    done_file = Path(tempfile.mkdtemp(prefix="wrk-")) / "done"
    argv.append(f"done_file={done_file}")
    started = time.time()
    with tempfile.TemporaryFile("w+") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, text=True)
        while process.poll() is None:
            if cap and all(done_file.with_name(f"done.{t}").exists() for t in range(threads)):
                process.send_signal(signal.SIGINT)  # every thread has all its answers: report now
                process.wait(30)
                break
            time.sleep(0.05)
        ended = time.time()
        out.seek(0)
        stdout = out.read()
    shutil.rmtree(done_file.parent, ignore_errors=True)
    line = next((ln for ln in stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed ({process.returncode}): {stdout[-3000:]}")
    raw = json.loads(line.removeprefix("WRKJSON "))
    return summarize_wrk(raw, started=started, ended=ended, connections=connections, threads=threads,
                         duration_s=duration_s, mode=mode, cap=cap, ramp_ms=ramp_ms, text=stdout)


def summarize_wrk(raw: dict, *, started: float, ended: float, connections: int, threads: int, duration_s: float,
                  mode: str, cap: int, ramp_ms: int, text: str) -> dict:
    pct = {round(p, 2): round(us / 1000, 2) for p, us in raw["percentiles_us"]}
    # A capped run lasts from its first request to its last answer (ramp-up included, like
    # JMeter's total); a duration run is wrk's own measured run time.
    span = (raw["last_answer_us"] - raw["first_send_us"]) / 1e6 if raw["first_send_us"] else 0.0
    duration = span if cap and span > 0 else raw["duration_us"] / 1e6
    errors = raw["errors"]
    timeline = throughput_timeline(raw["per_100ms"], raw["first_send_us"], raw["last_answer_us"])
    return {
        "connections": connections,
        "threads": threads,
        "mode": mode,
        "requests_per_user": cap or None,
        "ramp_up_s": ramp_ms / 1000,
        "duration_s": round(duration, 3),
        "requests": raw["requests"],
        "ok": raw["ok"],
        "graphql_errors": raw["graphql_errors"],
        "expected": raw["limit"] or None,
        "complete": (raw["ok"] == raw["limit"]) if raw["limit"] else True,
        "throughput_rps": round(raw["requests"] / duration, 1) if duration else 0.0,
        "goodput_rps": round(raw["ok"] / duration, 1) if duration else 0.0,  # answers without any error
        "wrk_duration_s": round(raw["duration_us"] / 1e6, 3),
        "first_send_at": raw["first_send_us"] / 1e6,
        "last_answer_at": raw["last_answer_us"] / 1e6,
        "errors": errors,
        "socket_errors": errors["connect"] + errors["read"] + errors["write"],
        "http_errors": errors["status"],
        "timeouts": errors["timeout"],
        "latency_ms": {
            "mean": round(raw["latency_us"]["mean"] / 1000, 2),
            "median": pct.get(50.0),
            "p90": pct.get(90.0),
            "p95": pct.get(95.0),
            "p99": pct.get(99.0),
            "p99_9": pct.get(99.9),
            "max": round(raw["latency_us"]["max"] / 1000, 2),
            "min": round(raw["latency_us"]["min"] / 1000, 2),
            "stdev": round(raw["latency_us"]["stdev"] / 1000, 2),
        },
        "percentiles_ms": [[p, us / 1000] for p, us in raw["percentiles_us"]][:200],
        "timeline": timeline,
        "error_samples": raw["error_samples"][:3],
        "started_at": started,
        "ended_at": ended,
        "wrk_text": text.split("WRKJSON", 1)[0][-1500:],
    }


def throughput_timeline(slots: list[list[int]], first_us: int, last_us: int) -> list[list[float]]:
    """[start second, answers/s] over windows of 1 s (0.5 s for runs under 10 s), from the
    script's 100 ms slots; the last, partial window is left out."""
    if not slots or not first_us:
        return []
    span = (last_us - first_us) / 1e6
    window = 1.0 if span >= 10 else 0.5
    width = int(window * 10)
    start_slot = first_us // 100_000
    counts: dict[int, int] = {}
    for slot, n in slots:
        index = (slot - start_slot) // width
        counts[index] = counts.get(index, 0) + n
    full_windows = int(span / window)
    return [[round(i * window, 1), round(counts.get(i, 0) / window, 1)] for i in range(full_windows)]


_TICK = os.sysconf("SC_CLK_TCK")


def _busy_seconds() -> float:
    """CPU time spent by the whole machine (all cores), not idle or waiting for I/O."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / _TICK


COMPONENTS = ("api", "redis", "mongodb", "load")


def _component(pid: int, command: str) -> str:
    """Which part of the benchmark a process is: the database servers by their command, the load
    (this process, the fan-out receiver, and wrk: its time joins this process's when it is
    reaped), and every other descendant (the API or ceiling servers and their workers)."""
    program = Path(command.split(" ", 1)[0]).name
    if pid == os.getpid() or program == "wrk" or "-m bench.fanout" in command:
        return "load"
    if "redis-server" in command:
        return "redis"
    if "secantus" in command:
        return "mongodb"
    return "api"


def _our_seconds() -> dict[str, float]:
    """CPU time of this process and all its descendants per component (alive ones, plus the
    reaped ones through their parents' cutime/cstime)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        rest = stat.rsplit(")", 1)[1].split()
        parents[int(entry.name)] = int(rest[1])
        times[int(entry.name)] = sum(int(x) for x in rest[11:15]) / _TICK  # utime stime cutime cstime
    ours = {os.getpid()}
    changed = True
    while changed:
        changed = False
        for pid, ppid in parents.items():
            if ppid in ours and pid not in ours:
                ours.add(pid)
                changed = True
    split = dict.fromkeys(COMPONENTS, 0.0)
    for pid in ours:
        split[_component(pid, cmdline(pid))] += times.get(pid, 0.0)
    return split


class CpuMeter:
    """How many cores the benchmark (servers, load generator, this process) used during a
    phase, and how many everything else on the machine used: the noise of a shared box."""

    def __init__(self) -> None:
        self.wall = time.monotonic()
        self.busy = _busy_seconds()
        self.ours = _our_seconds()

    def read(self) -> dict[str, Any]:
        """Cores used on average: by the machine, by the benchmark (and per component, e.g. how
        much of it Redis and the MongoDB-wire server took), and by everything else."""
        wall = time.monotonic() - self.wall
        busy = _busy_seconds() - self.busy
        now = _our_seconds()
        split = {name: max(0.0, now[name] - self.ours.get(name, 0.0)) for name in COMPONENTS}
        ours = sum(split.values())
        if wall <= 0:
            return {"wall_s": 0.0, "busy_cores": 0.0, "bench_cores": 0.0, "other_cores": 0.0, "components": {}}
        return {"wall_s": round(wall, 2), "busy_cores": round(busy / wall, 2), "bench_cores": round(ours / wall, 2),
                "other_cores": round(max(0.0, busy - ours) / wall, 2),
                "components": {name: round(seconds / wall, 2) for name, seconds in split.items()}}
