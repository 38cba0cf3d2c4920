"""The benchmark's phases: each drives the running stack and returns its figures."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench import fanout as fan
from bench.seed import create_group
from bench.stack import REPO, CpuMeter, Server, run_wrk
from bench.stats import latency_summary


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def wait_idle(server: Server, *, cores: float = 0.1, window_s: float = 0.5, timeout_s: float = 30.0) -> float:
    """Wait until the server's workers use less than `cores` (background work of the previous
    phase done: persister, presence); returns the seconds waited."""
    started = time.monotonic()
    quiet = 0
    last = server.cpu_seconds()
    while time.monotonic() - started < timeout_s and quiet < 2:
        time.sleep(window_s)
        now = server.cpu_seconds()
        quiet = quiet + 1 if (now - last) / window_s < cores else 0
        last = now
    return round(time.monotonic() - started, 2)



def load_phase(label: str, url: str, tokens: Path, **kwargs: Any) -> dict:
    log(f"{label}: wrk -c{kwargs['connections']} ...")
    meter = CpuMeter()
    result = run_wrk(url, tokens=tokens, **kwargs)
    result["cpu"] = meter.read()
    lat = result["latency_ms"]
    log(f"{label}: {result['requests']} requests in {result['duration_s']} s = {result['throughput_rps']} req/s "
        f"({result['goodput_rps']} without error), "
        f"mean {lat['mean']} ms, p50 {lat['median']} ms, p99 {lat['p99']} ms, max {lat['max']} ms, "
        f"graphql errors {result['graphql_errors']}, socket errors {result['socket_errors']}, "
        f"timeouts {result['timeouts']}; other processes used {result['cpu']['other_cores']} cores")
    return result


async def primed_traffic(api: Server, receivers: fan.Receivers, primers: list[tuple[str, str]],
                         senders: list[tuple[str, str]], *, rate: float, seconds: float,
                         to: str = "receiverId") -> tuple[dict, int, dict, CpuMeter]:
    """Prime (one message from each of `primers`, again every 5 s until every subscriber has had an
    event, 6 times at most: a socket's subscription is live in the server a moment after the
    client sent `subscribe`, and nothing tells the client when), forget the primers' deliveries,
    then send at `rate` for `seconds`: (primer sends, subscribers without an event after priming,
    sends, the CPU meter started with the sends)."""
    prime = {"sent": 0, "errors": 0}
    for _ in range(6):
        again = await fan.send_at_rate(api.graphql_url, primers, rate=max(rate, 100), count=len(primers),
                                       tag="prime", to=to)
        prime = {"sent": prime["sent"] + again["sent"], "errors": prime["errors"] + again["errors"]}
        without_event = await receivers.prime(wait_s=5)
        if not without_event:
            break
    await receivers.reset()
    meter = CpuMeter()
    sent = await fan.send_at_rate(api.graphql_url, senders, rate=rate, seconds=seconds, to=to)
    return prime, without_event, sent, meter


def traffic_figures(connect_s: float, without_event: int, rate: float, prime: dict, sent: dict) -> dict:
    """What the fan-out phases report alike about connecting, priming and sending."""
    return {
        "connect_s": connect_s,
        "subscribers_without_event_after_prime": without_event,
        "rate_target_per_s": rate,
        "rate_achieved_per_s": sent["achieved_rate"],
        "seconds": sent["seconds"],
        "messages_sent": sent["sent"],
        "send_errors": sent["errors"] + prime["errors"],
        "primer_messages": prime["sent"],
        "send_http_latency_ms": latency_summary(sent["http_ms"]),
    }


async def fanout_phase(api: Server, tokens: Path, workdir: Path, *, subscribers: int, rate: float,
                       seconds: float, compression: str = "deflate") -> dict:
    lines = [ln.split() for ln in tokens.read_text().splitlines()[:subscribers]]
    pairs = [(ln[0], ln[1]) for ln in lines]  # (token, partner)
    senders = pairs[0::2]  # user 2k writes to 2k+1: every conversation once per round
    async with fan.Receivers(api.ws_url, tokens, subscribers, workdir / "fanout.json",
                             compression=compression) as receivers:
        await asyncio.sleep(1.5)
        rss_before = api.rss_kb()
        connected_s, failures = await receivers.connect()
        await asyncio.sleep(2.0)
        rss_idle = api.rss_kb()
        connected = subscribers - failures
        # Prime: one message per conversation, both directions, proves every subscription is live.
        prime, without_event, sent, meter = await primed_traffic(api, receivers, pairs, senders, rate=rate,
                                                                 seconds=seconds)
        cpu = meter.read()
        await asyncio.sleep(2.0)
        rss_after = api.rss_kb()
        data = await receivers.stop()
    received = data["receiver_latencies_ms"]
    per_sub_kb = (rss_idle - rss_before) / connected if connected else 0.0
    return {
        "subscribers": subscribers,
        "connected": connected,
        "conversations": subscribers // 2,
        **traffic_figures(connected_s, without_event, rate, prime, sent),
        "stored_expected": sent["sent"] - sent["errors"] + prime["sent"] - prime["errors"],
        "deliveries_expected": sent["sent"],
        "deliveries_received": len(received),
        "deliver_latency_ms": latency_summary(received),
        "sender_copy_latency_ms": latency_summary(data["sender_copy_latencies_ms"]),
        "worker_rss_kb": {"before": rss_before, "idle_connected": rss_idle, "after_traffic": rss_after},
        "idle_subscription_kb": round(per_sub_kb, 1),
        "websocket_compression": ("permessage-deflate offered by the client (as browsers do)"
                                  if compression == "deflate" else "no compression offered by the client"),
        "latencies_ms": received,
        "cpu": cpu,
    }


async def group_phase(api: Server, tokens: Path, workdir: Path, *, members: int, rate: float, seconds: float,
                      compression: str = "deflate") -> dict:
    """One group of the first `members` users, every member subscribed to `messageEvents`, `rate`
    messages/s sent into it by its members in turn for `seconds`. Each message is one PUBLISH per
    member inside the send script and one delivery per member (the sender's own copy included);
    latency runs from the send's timestamp to each delivery. CPU per delivery: the API's and
    Redis's CPU time from the first send until the last delivery, over the deliveries."""
    group_id = await create_group(api, tokens, members)
    senders = [(ln.split()[0], group_id) for ln in tokens.read_text().splitlines()[:members]]
    async with fan.Receivers(api.ws_url, tokens, members, workdir / f"group-{members}.json",
                             compression=compression) as receivers:
        connected_s, failures = await receivers.connect()
        prime, without_event, sent, meter = await primed_traffic(api, receivers, senders[:1], senders, rate=rate,
                                                                 seconds=seconds, to="conversationId")
        cpu = meter.read()
        await receivers.settle()
        until_delivered = meter.read()
        data = await receivers.stop()
    others, own = data["receiver_latencies_ms"], data["sender_copy_latencies_ms"]
    accepted = sent["sent"] - sent["errors"]
    expected = accepted * members
    received = data["distinct_deliveries"]

    def per_delivery_us(component: str) -> float:
        cpu_s = until_delivered["components"].get(component, 0.0) * until_delivered["wall_s"]
        return round(cpu_s / received * 1e6, 1) if received else 0.0

    return {
        "members": members,
        "connected": members - failures,
        **traffic_figures(connected_s, without_event, rate, prime, sent),
        "deliveries_expected": expected,
        "deliveries_received": received,
        "deliveries_lost": expected - received,
        "duplicate_deliveries": len(others) + len(own) - received,
        "deliveries_per_s": round(received / sent["seconds"], 1) if sent["seconds"] else 0.0,
        "deliver_latency_ms": latency_summary(others + own),
        "other_members_latency_ms": latency_summary(others),
        "sender_copy_latency_ms": latency_summary(own),
        "api_cpu_us_per_delivery": per_delivery_us("api"),
        "redis_cpu_us_per_delivery": per_delivery_us("redis"),
        "load_cpu_us_per_delivery": per_delivery_us("load"),
        "cpu": cpu,
        "cpu_until_delivered": until_delivered,
    }


def cost_growth(sizes: list[dict]) -> dict:
    """How the API's and Redis's CPU per message grow with the group size: a least-squares line
    through (members, CPU ms per message); its slope is the cost of one more member (one more
    PUBLISH in the script, one more delivery), its intercept what a message costs regardless."""
    fit: dict = {}
    points = [g for g in sizes if g["deliveries_received"]]
    for component in ("api", "redis"):
        xs = [float(g["members"]) for g in points]
        ys = [g[f"{component}_cpu_us_per_delivery"] * g["members"] / 1000 for g in points]  # ms per message
        if len(set(xs)) < 2:
            continue
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
        fit[component] = {"us_per_member": round(slope * 1000, 1), "ms_per_message": round(my - slope * mx, 3),
                          "points_ms_per_message": [[x, round(y, 3)] for x, y in zip(xs, ys, strict=True)]}
    return fit


def history_phase(label: str, server: Server, tokens: Path, seconds: float) -> dict:
    first = tokens.read_text().splitlines()[0].split()
    query = ("query History($partnerId: ID!) { history(partnerId: $partnerId, last: 50) "
             "{ edges { node { id } } pageInfo { hasPreviousPage } } }")
    r = httpx.post(server.graphql_url, json={"query": query, "variables": {"partnerId": first[1]}},
                   headers={"Authorization": f"Bearer {first[0]}"}, timeout=30)
    page = r.json()
    if page.get("errors"):
        raise RuntimeError(f"history failed: {page['errors']}")
    edges = len(page["data"]["history"]["edges"])
    result = load_phase(label, server.graphql_url, tokens, connections=1, threads=1, duration_s=seconds,
                        mode="history")
    result["page_size"] = edges
    return result


def server_log_summary(path: Path) -> dict:
    """Errors and warnings the API logged (JSON lines), grouped by their exception's last line."""
    from collections import Counter

    levels: Counter[str] = Counter()
    causes: Counter[str] = Counter()
    if path.exists():
        for line in path.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            level = str(entry.get("level", ""))
            if level not in ("error", "warning", "critical"):
                continue
            levels[level] += 1
            exc = str(entry.get("exc") or "").strip().splitlines()
            message = re.sub(r"\(error id [0-9a-f]+\)", "(error id …)", str(entry.get("msg", "")))[:80]
            cause = exc[-1][:160] if exc else str(entry.get("error", ""))[:160]
            causes[f"{message} | {cause}"] += 1
    return {"levels": dict(levels), "top": [[cause, n] for cause, n in causes.most_common(8)]}


def module_json(argv: list[str], timeout: float) -> dict:
    """Run one of the existing benchmark modules and take its last JSON line."""
    meter = CpuMeter()
    done = subprocess.run([sys.executable, "-m", *argv], cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          check=False)
    cpu = meter.read()
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stdout[-2000:]} {done.stderr[-2000:]}")
    for ln in done.stdout.splitlines():
        if not ln.startswith("{"):
            log(f"  {ln}")
    return {**json.loads(lines[-1]), "cpu": cpu}


def profile_phase(api: Server, tokens: Path, workdir: Path, *, connections: int, seconds: float) -> dict:
    """py-spy on every API worker during a sendMessage load run; the hottest frames."""
    from bench.profile import aggregate, record

    try:
        return aggregate(record(api, lambda: run_wrk(api.graphql_url, tokens=tokens, connections=connections,
                                                     threads=2, duration_s=seconds), workdir, seconds))
    except Exception as exc:  # noqa: BLE001 - e.g. no ptrace permission: the rest of the report stands
        log(f"profiling failed: {exc!r}")
        return {"error": repr(exc), "markdown": f"Profiling failed: `{exc!r}`.\n"}


