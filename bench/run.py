"""The benchmark suite: `make bench` (full), `make bench-quick` (≤ 3 minutes).

    .venv/bin/python -m bench.run [--mode full|quick|smoke] [--workers N] [--out bench/results]
                                  [--profile] [--profile-seed]

Starts the real stack in a temporary directory — embedded Redis (Search + JSON) and the
MongoDB-wire server, then `chattergram serve --workers N` (N = cores) with RATE_LIMITS=off,
STT_ENGINE=none, LOG_LEVEL=WARNING — next to the ceiling app (bench/ceiling_app.py, same
workers and uvicorn settings), and measures:

1. the seed scenario: U authenticated users × R `sendMessage` each, ramp-up, keep-alive, with
   wrk (bench/graphql.lua); then the time until all of them are in MongoDB;
2. sendMessage vs. the ceiling, wrk duration runs at a low and a high concurrency, same run;
3. fan-out: WebSocket subscribers on `messageEvents`, messages at a fixed rate, send→deliver
   latency at the receiver and memory per idle subscription (worker RSS delta / sockets);
4. history: a 50-message page, hot (Redis) and cold (a second instance on an empty Redis with
   a tiny hot window: every page comes from MongoDB);
5. search latency (bench/search_latency.py) and 6. transcription RTF (bench/transcription_rtf.py);
7. group fan-out (run after 4, on the same API): a group of each size in the sweep, every member
   subscribed, messages at a fixed rate into it; send→deliver latency of every delivery, lost
   deliveries, and the API's and Redis's CPU per delivery.

Writes bench/results/<timestamp>.json, <timestamp>.md and <timestamp>-*.png, and prints the
summary. Figures are only comparable within one run: the load generator shares the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pymongo

from api.dev_servers import embedded_servers, start_redis
from bench.phases import (
    cost_growth,
    fanout_phase,
    group_phase,
    history_phase,
    load_phase,
    log,
    module_json,
    profile_phase,
    server_log_summary,
    wait_idle,
)
from bench.profile import profiled
from bench.seed import DATABASE, create_users, ensure_history_depth, write_tokens
from bench.stack import REPO, CpuMeter, Server, api_server, ceiling_server, raise_fd_limit

MODES: dict[str, dict] = {
    "full": dict(users=1000, per_user=10, ramp_s=5, low=50, high=1000, run_s=15, fan_subs=1000, fan_rate=500,
                 fan_s=10, history_s=10, search_messages=100_000, search_conversations=1000, search_queries=2000,
                 stt=[5, 30, 120], api_register=100, drain_timeout=300, group_sizes=[10, 50, 100], group_rate=20,
                 group_s=10),
    "quick": dict(users=1000, per_user=10, ramp_s=5, low=50, high=1000, run_s=6, fan_subs=200, fan_rate=200,
                  fan_s=5, history_s=3, search_messages=20_000, search_conversations=500, search_queries=500,
                  stt=[5, 30], api_register=10, drain_timeout=120, group_sizes=[10, 50, 100], group_rate=20,
                  group_s=5),
    # For tests/test_bench_smoke.py: every phase, tiny sizes.
    "smoke": dict(users=50, per_user=2, ramp_s=1, low=10, high=50, run_s=1, fan_subs=20, fan_rate=20,
                  fan_s=1, history_s=1, search_messages=2000, search_conversations=100, search_queries=100,
                  stt=[3], api_register=4, drain_timeout=60, group_sizes=[4, 8], group_rate=10, group_s=1),
}

SEED_MAX_S = 120  # the seed scenario's wrk duration: it stops earlier, once every user sent its N


# --------------------------------------------------------------------------- MongoDB drain


class Archive:
    """How many messages the API accepted (Redis: the hot window's id set, nothing is trimmed
    with the default 90-day window) and how many MongoDB holds."""

    def __init__(self, mongodb_url: str, redis_url: str) -> None:
        import redis

        from storage import keys
        from storage.slots import PARTITIONS

        self.client: pymongo.MongoClient = pymongo.MongoClient(mongodb_url)
        self.messages = self.client[DATABASE]["messages"]
        self.redis = redis.Redis.from_url(redis_url)
        self.hot_keys = [keys.hot_messages(p) for p in range(PARTITIONS)]  # one per partition

    def count(self) -> int:
        return int(self.messages.count_documents({}))

    def accepted(self) -> int:
        with self.redis.pipeline(transaction=False) as pipe:
            for key in self.hot_keys:
                pipe.zcard(key)
            return sum(int(n) for n in pipe.execute())

    def wait_for(self, *, since: float, timeout: float, exact: int | None = None, baseline: int = 0,
                 quiet_s: float = 1.0) -> dict:
        """Poll until MongoDB holds every message Redis accepted, and Redis stopped growing for
        `quiet_s` (after wrk stops, the server still answers the requests it had queued, whose
        clients are gone: Redis, not wrk, says how many messages there are). `drain_s` runs
        from `since` (the last answer of the load run) to when MongoDB first held them all;
        `exact` is the count a capped run must have produced (on top of `baseline`)."""
        deadline = time.monotonic() + timeout
        expected, changed = self.accepted(), time.monotonic()
        count = self.count()
        reached = time.time() if count >= expected else None
        while time.monotonic() < deadline:
            if reached is not None and time.monotonic() - changed >= quiet_s:
                break
            time.sleep(0.1)
            now = self.accepted()
            if now != expected:
                expected, changed, reached = now, time.monotonic(), None
            count = self.count()
            if count < expected:
                reached = None
            elif reached is None:
                reached = time.time()
        drained = round(max(0.0, (reached or time.time()) - since), 2)
        verified = count == expected and (exact is None or expected - baseline == exact)
        return {"expected": expected, "exact": exact, "new": expected - baseline, "in_mongodb": count,
                "verified": verified, "drain_s": drained}

    def close(self) -> None:
        self.client.close()
        self.redis.close()


# --------------------------------------------------------------------------- the run


async def run(args: argparse.Namespace) -> dict:
    cfg = MODES[args.mode]
    raise_fd_limit()
    workdir = Path(tempfile.mkdtemp(prefix="chattergram-bench-"))
    workers = args.workers
    report: dict = {
        "meta": {
            "mode": args.mode,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "cpus": os.cpu_count(),
            "workers": workers,
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(),
            "wrk": " ".join(subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split()[:2]),
            "config": cfg,
            "settings": {"RATE_LIMITS": "off", "STT_ENGINE": "none", "LOG_LEVEL": "WARNING"},
        }
    }
    secret = secrets.token_urlsafe(48)
    tokens = workdir / "tokens.txt"
    t_start = time.perf_counter()
    whole = CpuMeter()
    with embedded_servers(workdir / "services") as services:
        mongodb_url = services.mongodb_url.rsplit("/", 1)[0] + f"/{DATABASE}"
        extra_env = dict(item.split("=", 1) for item in args.api_env)
        report["meta"]["api_env"] = extra_env
        api = api_server(redis_url=services.redis_url, mongodb_url=mongodb_url, jwt_secret=secret, workers=workers,
                         log_path=workdir / "api.log", data_dir=workdir / "api-data", **extra_env)
        ceiling = ceiling_server(redis_url=services.redis_url, workers=workers, log_path=workdir / "ceiling.log")
        archive = Archive(mongodb_url, services.redis_url)
        cold: Server | None = None
        cold_redis = None
        try:
            log(f"starting the API (--workers {workers}) and the ceiling app; work dir {workdir}")
            api.start()
            ceiling.start()
            log(f"users: {cfg['users']} ({cfg['api_register']} through the API's register)")
            users, report["setup"] = await create_users(
                api, redis_url=services.redis_url, mongodb_url=mongodb_url, secret=secret, count=cfg["users"],
                via_api=cfg["api_register"])
            write_tokens(tokens, users)
            log(f"users ready: {report['setup']}")

            # 3. Fan-out, first: the memory per subscription is measured on a fresh API process, whose
            # allocator has not kept the freed memory of the HTTP load runs for reuse.
            log(f"fan-out: {cfg['fan_subs']} subscribers, {cfg['fan_rate']} messages/s for {cfg['fan_s']} s")
            fo = await fanout_phase(api, tokens, workdir, subscribers=cfg["fan_subs"],
                                    rate=args.fanout_rate or cfg["fan_rate"],
                                    seconds=cfg["fan_s"], compression=args.ws_compression)
            log(f"fan-out: deliver latency {fo['deliver_latency_ms']}, {fo['deliveries_received']}/"
                f"{fo['deliveries_expected']} delivered, idle subscription {fo['idle_subscription_kb']} KB")
            report["fanout"] = fo
            report["fanout"]["persisted"] = archive.wait_for(since=time.time(), timeout=cfg["drain_timeout"])

            # 1. The seed scenario (after the subscribers' disconnects have been handled).
            wait_idle(api)
            baseline = archive.accepted()
            def seed_load() -> dict:
                return load_phase(f"seed scenario {cfg['users']} clients x {cfg['per_user']}", api.graphql_url,
                                  tokens, connections=cfg["users"], threads=2, duration_s=SEED_MAX_S,
                                  cap=cfg["per_user"], ramp_ms=int(cfg["ramp_s"] * 1000))

            if args.profile_seed:
                log("profiling the seed scenario with py-spy")
                seed, seed_profile = profiled(api, seed_load, workdir, max_seconds=SEED_MAX_S)
                seed["profile"] = seed_profile
            else:
                seed = seed_load()
            seed["persisted"] = archive.wait_for(since=seed["last_answer_at"], timeout=cfg["drain_timeout"],
                                                 exact=cfg["users"] * cfg["per_user"], baseline=baseline)
            log(f"seed scenario: {seed['persisted']}")
            report["seed_scenario"] = seed

            # 2. sendMessage vs. the ceiling, same load, same run.
            report["throughput"] = {}
            for level in ("low", "high"):
                conns = cfg[level]
                wait_idle(api)
                ours = load_phase(f"sendMessage c{conns}", api.graphql_url, tokens, connections=conns, threads=2,
                                  duration_s=cfg["run_s"])
                ours["persisted"] = archive.wait_for(since=ours["last_answer_at"], timeout=cfg["drain_timeout"])
                log(f"sendMessage c{conns}: {ours['persisted']}")
                wait_idle(api)
                bare = load_phase(f"ceiling c{conns}", ceiling.graphql_url, tokens, connections=conns, threads=2,
                                  duration_s=cfg["run_s"])
                # Successful answers only: an error answered fast is not a message sent.
                ratio = ours["goodput_rps"] / bare["goodput_rps"] if bare["goodput_rps"] else 0.0
                log(f"c{conns}: sendMessage {ours['goodput_rps']} ok/s = {ratio:.0%} of the ceiling's "
                    f"{bare['goodput_rps']} ok/s")
                report["throughput"][level] = {"connections": conns, "ours": ours, "ceiling": bare,
                                               "ratio": round(ratio, 3)}
            ceiling.stop()
            if args.only_1to1:  # an A/B round (`--only-1to1`): the rest is not compared
                report["meta"]["work_dir"] = str(workdir)
                return report

            # 4a. History, hot.
            # History reads the first 100 users' conversations (50), each topped up to 60 messages.
            history_tokens = workdir / "history-tokens.txt"
            history_tokens.write_text("\n".join(tokens.read_text().splitlines()[:100]) + "\n")
            depth = ensure_history_depth(api, history_tokens, services.redis_url)
            if depth["added"]:
                archive.wait_for(since=time.time(), timeout=cfg["drain_timeout"])
            wait_idle(api)
            report["history"] = {"hot": history_phase("history hot (Redis)", api, history_tokens, cfg["history_s"]),
                                 "seeded": depth}

            if args.profile:
                log("profiling sendMessage under load with py-spy")
                report["profile"] = profile_phase(api, tokens, workdir, connections=cfg["low"],
                                                  seconds=max(5, cfg["run_s"]))
                report["profile"]["persisted"] = archive.wait_for(since=time.time(), timeout=cfg["drain_timeout"])

            # 4b. History, cold: a second instance on an empty Redis with a tiny hot window.
            log("history cold: second instance, empty Redis, HOT_WINDOW_DAYS=1e-5")
            cold_redis = start_redis(workdir / "cold-redis")
            cold = api_server(redis_url=cold_redis.url, mongodb_url=mongodb_url, jwt_secret=secret, workers=1,
                              log_path=workdir / "api-cold.log", data_dir=workdir / "api-cold-data",
                              **{**extra_env, "HOT_WINDOW_DAYS": "0.00001", "HOT_WINDOW_TRIM_SECONDS": "0.5"})
            t0 = time.perf_counter()
            cold.start(timeout=300)
            report["history"]["cold_instance_start_s"] = round(time.perf_counter() - t0, 2)
            wait_idle(cold)
            report["history"]["cold"] = history_phase("history cold (MongoDB)", cold, history_tokens, cfg["history_s"])
            cold.stop()

            # 7. Group fan-out, last: the 1:1 phases above run as they would without it.
            rate = cfg["group_rate"]
            log(f"group fan-out: groups of {cfg['group_sizes']} members, {rate:g} messages/s for "
                f"{cfg['group_s']} s each")
            sizes = []
            for members in cfg["group_sizes"]:
                waited = wait_idle(api)
                g = await group_phase(api, tokens, workdir, members=members, rate=rate, seconds=cfg["group_s"],
                                      compression=args.ws_compression)
                g["waited_for_idle_api_s"] = waited
                d = g["deliver_latency_ms"]
                log(f"group of {members}: {g['deliveries_received']:,}/{g['deliveries_expected']:,} delivered "
                    f"({g['deliveries_lost']} lost), {g['deliveries_per_s']:,.0f} deliveries/s, send→deliver p50 "
                    f"{d['median']} ms p99 {d['p99']} ms; per delivery API {g['api_cpu_us_per_delivery']} µs, "
                    f"Redis {g['redis_cpu_us_per_delivery']} µs")
                sizes.append(g)
            report["groups"] = {"rate_per_s": rate, "seconds": cfg["group_s"], "instances": 1, "sizes": sizes,
                                "growth": cost_growth(sizes),
                                "persisted": archive.wait_for(since=time.time(), timeout=cfg["drain_timeout"])}
        finally:
            for server in (cold, api, ceiling):
                if server is not None:
                    server.stop()
            if cold_redis is not None:
                cold_redis.stop()
            archive.close()
            report["server_log"] = {"api": server_log_summary(api.log_path),
                                    "ceiling": server_log_summary(ceiling.log_path)}
            if any(report["server_log"][k]["levels"].get("error") for k in ("api", "ceiling")):
                log(f"server errors: {report['server_log']}")
    report["meta"]["stack_phases_s"] = round(time.perf_counter() - t_start, 1)

    # 5. Search and 6. transcription: the existing benchmarks, after the stack is down.
    log(f"search: {cfg['search_messages']:,} messages, {cfg['search_queries']} queries (bench.search_latency)")
    report["search"] = module_json(["bench.search_latency", "--messages", str(cfg["search_messages"]),
                                    "--conversations", str(cfg["search_conversations"]),
                                    "--queries", str(cfg["search_queries"]),
                                    "--archived", "0"], timeout=900)  # the archive's 1M: `make bench-search`
    if args.skip_stt:
        report["transcription"] = {"skipped": True, "clips": []}
    else:
        log(f"transcription: clips of {cfg['stt']} s (bench.transcription_rtf)")
        report["transcription"] = module_json(["bench.transcription_rtf", "--seconds", *map(str, cfg["stt"])],
                                              timeout=900)
    report["meta"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report["meta"]["total_s"] = round(time.perf_counter() - t_start, 1)
    report["meta"]["cpu"] = whole.read()
    if args.keep:
        log(f"kept the work dir (logs, tokens): {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return report


def one_to_one_summary(report: dict, out_dir: Path) -> str:
    """The 1:1 figures of an `--only-1to1` run as one JSON line (also written to `out_dir`):
    throughput, share of the same-run ceiling, and CPU per request (ms)."""
    def cpu_ms(run: dict, component: str = "api") -> float:
        cores = float(run["cpu"]["components"].get(component, 0.0))
        return round(cores * float(run["duration_s"]) / max(1, int(run["requests"])) * 1000, 3)

    seed = report["seed_scenario"]
    figures: dict[str, Any] = {"started_at": report["meta"]["started_at"], "seed_rps": seed["goodput_rps"],
                               "seed_api_cpu_ms": cpu_ms(seed), "seed_drain_s": seed["persisted"].get("drain_s"),
                               # the databases share the cores here: their CPU per request counts too
                               "seed_mongodb_cpu_ms": cpu_ms(seed, "mongodb"),
                               "seed_redis_cpu_ms": cpu_ms(seed, "redis")}
    for level, run in report["throughput"].items():
        figures[f"{level}_share"] = run["ratio"]
        figures[f"{level}_rps"] = run["ours"]["goodput_rps"]
        figures[f"{level}_api_cpu_ms"] = cpu_ms(run["ours"])
        figures[f"{level}_mongodb_cpu_ms"] = cpu_ms(run["ours"], "mongodb")
        figures[f"{level}_drain_s"] = run["ours"]["persisted"].get("drain_s")  # how long MongoDB lagged after the run
        figures[f"{level}_ceiling_api_cpu_ms"] = cpu_ms(run["ceiling"])
        figures[f"{level}_other_cores"] = run["ours"]["cpu"].get("other_cores")
    out_dir.mkdir(parents=True, exist_ok=True)
    line = json.dumps(figures)
    with (out_dir / "one-to-one.jsonl").open("a") as f:
        f.write(line + "\n")
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=sorted(MODES), default="full")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--skip-stt", action="store_true", help="skip the transcription benchmark")
    parser.add_argument("--fanout-rate", type=float, default=None,
                        help="messages/s in the fan-out phase (default: the mode's, 500 in full mode)")
    parser.add_argument("--profile", action="store_true", help="also profile sendMessage with py-spy")
    parser.add_argument("--profile-seed", action="store_true",
                        help="also profile the API workers with py-spy during the seed scenario")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (server logs, tokens)")
    parser.add_argument("--ws-compression", choices=["deflate", "none"], default="deflate",
                        help="whether the fan-out subscribers offer permessage-deflate (browsers do)")
    parser.add_argument("--api-env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for the API processes (e.g. LOG_LEVEL=INFO to see the cost of logging)")
    parser.add_argument("--only-1to1", action="store_true",
                        help="stop after the 1:1 phases (seed scenario, sendMessage vs ceiling); write their JSON "
                             "only: for interleaved A/B runs of two checkouts")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: install it with 'apt-get install wrk' (make bench does)")
    report = asyncio.run(run(args))
    if args.only_1to1:
        shutil.rmtree(report["meta"]["work_dir"], ignore_errors=True)
        print(one_to_one_summary(report, args.out))
        return
    from bench.report import write_report

    paths = write_report(report, args.out)
    print(paths["summary_text"])
    for kind, path in paths.items():
        if kind != "summary_text":
            log(f"wrote {path}")


if __name__ == "__main__":
    main()
