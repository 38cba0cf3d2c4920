"""The benchmark report: targets, Markdown summary, PNG charts, JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.charts import charts
from bench.stats import OLD_APP


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def targets(report: dict) -> list[dict]:
    """Each of the issue's "must show" figures: target, measured, met, and the gap."""
    rows: list[dict] = []
    mode = report["meta"]["mode"]

    def add(name: str, target: str, measured: float | None, ok: bool, gap: str = "", unit: str = "") -> None:
        rows.append({"name": name, "target": target, "measured": measured, "unit": unit, "met": bool(ok),
                     "gap": "" if ok else gap})

    high = report["throughput"]["high"]
    ours, ratio = high["ours"], high["ratio"]
    c = high["connections"]
    seed = report["seed_scenario"]
    add(f"sendMessage c{c}: share of the bare-Strawberry ceiling (same run, answers without error)", "≥ 70%",
        round(ratio * 100, 1),
        ratio >= 0.70, f"{(0.70 - ratio) * 100:.1f} points short", "%")
    rps = ours["goodput_rps"]
    add(f"sendMessage c{c}: throughput (answers without error)", "≥ 2,000 req/s (old app ~1,265 × 1.5)", rps,
        rps >= 2000,
        f"{2000 - rps:,.0f} req/s short ({rps / OLD_APP['c1000_rps']:.2f}× the old app)", "req/s")
    errors = ours["graphql_errors"] + ours["socket_errors"] + ours["http_errors"]
    errors_seed = seed["graphql_errors"] + seed["socket_errors"] + seed["http_errors"]
    add(f"sendMessage c{c} + seed scenario: errors", "0", errors + errors_seed, errors + errors_seed == 0,
        f"{errors + errors_seed} errors")
    timeouts = ours["timeouts"] + seed["timeouts"]
    add(f"sendMessage c{c} + seed scenario: timeouts (> 2 s)", "0", timeouts, timeouts == 0, f"{timeouts} timeouts")
    p99 = max(ours["latency_ms"]["p99"] or 0, seed["latency_ms"]["p99"] or 0)
    add(f"sendMessage c{c} + seed scenario: p99 latency (worse of the two)", "≤ 650 ms", p99, p99 <= 650,
        f"{p99 - 650:,.0f} ms over", "ms")
    persisted = seed["persisted"]
    sent = persisted.get("exact") or persisted["expected"]
    new = persisted.get("new", persisted["expected"])
    mongo_ok = persisted["in_mongodb"] == persisted["expected"]
    held = "holds every accepted message" if mongo_ok else \
        f"holds {persisted['in_mongodb']:,} of the {persisted['expected']:,} accepted so far"
    add(f"seed scenario: all {sent:,} messages in MongoDB after the drain",
        "all, time reported", persisted["drain_s"], persisted["verified"],
        f"only {new:,} of {sent:,} were accepted (the rest got errors); MongoDB {held}", "s to drain")
    fo = report["fanout"]
    p99f = fo["deliver_latency_ms"]["p99"]
    full_size = fo["subscribers"] >= 1000 and fo["rate_target_per_s"] >= 500
    scale = "" if full_size else f" (this run: {fo['subscribers']} subscribers, {fo['rate_target_per_s']:g}/s)"
    add(f"fan-out p99 send→deliver{scale}", "≤ 50 ms at 500/s, 1,000 subscribers", p99f, p99f <= 50,
        f"{p99f - 50:,.1f} ms over", "ms")
    kb = fo["idle_subscription_kb"]
    add("memory per idle subscription", "≤ 50 KB", kb, kb <= 50, f"{kb - 50:,.1f} KB over", "KB")
    if report.get("groups", {}).get("sizes"):
        g = report["groups"]["sizes"][-1]
        lost = g["deliveries_lost"]
        add(f"group fan-out, {g['members']} members at {g['rate_target_per_s']:g} messages/s "
            f"({g['members'] * g['rate_target_per_s']:,.0f} deliveries/s): lost deliveries (issue #13)", "0", lost,
            lost == 0, f"{lost:,} of {g['deliveries_expected']:,} deliveries lost")
    hot = report["history"]["hot"]["latency_ms"]["p99"]
    add("history page (50) p99, hot (Redis)", "≤ 10 ms", hot, hot <= 10, f"{hot - 10:,.2f} ms over", "ms")
    search = report["search"]
    sp99 = search["p99_ms"]
    add(f"search p99 over {search['messages']:,} messages", "≤ 20 ms (100k)", sp99, sp99 <= 20,
        f"{sp99 - 20:,.2f} ms over", "ms")
    for clip in report["transcription"].get("clips", []):
        add(f"whisper tiny.en RTF, {clip['audio_s']:g} s clip", "≤ 0.15", clip["rtf"], clip["rtf"] <= 0.15,
            f"{clip['rtf'] - 0.15:.3f} over ({clip['rtf'] / 0.15:.1f}× the target)")
    if mode != "full":
        for row in rows:
            row["note"] = f"{mode} mode"
    return rows


# --------------------------------------------------------------------------- Markdown


def _http_row(label: str, run: dict) -> str:
    lat = run["latency_ms"]
    errors = run["graphql_errors"] + run["socket_errors"] + run["http_errors"]
    return (f"| {label} | {run['connections']:,} | {run['requests']:,} | {_fmt(run['throughput_rps'])} | "
            f"{_fmt(run['goodput_rps'])} | "
            f"{_fmt(lat['mean'])} | {_fmt(lat['median'])} | {_fmt(lat['p90'])} | {_fmt(lat['p95'])} | "
            f"{_fmt(lat['p99'])} | {_fmt(lat['max'])} | {errors:,} | {run['timeouts']:,} | "
            f"{_fmt(run['duration_s'], 2)} | {_fmt(run.get('cpu', {}).get('other_cores'), 2)} |")


def _cpu_row(label: str, run: dict) -> str:
    cpu = run.get("cpu", {})
    parts = cpu.get("components", {})
    return (f"| {label} | {_fmt(parts.get('api'), 2)} | {_fmt(parts.get('redis'), 2)} | "
            f"{_fmt(parts.get('mongodb'), 2)} | {_fmt(parts.get('load'), 2)} | {_fmt(cpu.get('other_cores'), 2)} |")


def groups_markdown(groups: dict) -> str:
    out = ["## Group fan-out (`sendMessage` with `conversationId`, every member on `messageEvents`)\n"]
    out.append(f"One group per size, created with createGroup + addMembers; all its members subscribed over "
               f"WebSocket to the benchmark's API ({groups['instances']} instance; each of its worker processes "
               f"holds one Redis pub/sub connection); {groups['rate_per_s']:g} messages/s for "
               f"{groups['seconds']:g} s sent into it by its members in turn. A delivery is one member's "
               f"`CREATED` event (the sender's own copy included): members × messages. Latency: the send's "
               f"timestamp to each delivery. CPU per delivery: the process's CPU time from the first send to the "
               f"last delivery, over the deliveries.\n")
    out.append("| members | messages/s | deliveries/s | delivered / expected | lost | send → deliver p50 ms | p99 "
               "| max | sendMessage HTTP p50 ms | p99 | API cores | Redis cores | API µs / delivery "
               "| Redis µs / delivery | outside the benchmark (cores) |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for g in groups["sizes"]:
        d, h, parts = g["deliver_latency_ms"], g["send_http_latency_ms"], g["cpu"].get("components", {})
        out.append(f"| {g['members']} | {_fmt(g['rate_achieved_per_s'])} | {_fmt(g['deliveries_per_s'])} | "
                   f"{g['deliveries_received']:,} / {g['deliveries_expected']:,} | {g['deliveries_lost']:,} | "
                   f"{d['median']} | {d['p99']} | {d['max']} | {h['median']} | {h['p99']} | "
                   f"{_fmt(parts.get('api'), 2)} | {_fmt(parts.get('redis'), 2)} | "
                   f"{_fmt(g['api_cpu_us_per_delivery'])} | {_fmt(g['redis_cpu_us_per_delivery'])} | "
                   f"{_fmt(g['cpu'].get('other_cores'), 2)} |")
    out.append("")
    growth = groups.get("growth", {})
    if growth:
        parts_ = [f"{name}: {fit['ms_per_message']:g} ms per message {'−' if fit['us_per_member'] < 0 else '+'} "
                  f"{abs(fit['us_per_member']):g} µs per member"
                  for name, fit in (("API workers", growth.get("api")), ("Redis", growth.get("redis"))) if fit]
        out.append("CPU per message against the group's size (least-squares line over the sizes above; the slope "
                   "is one more member: one more PUBLISH in the send script, one more delivery): "
                   + "; ".join(parts_) + ".\n")
    persisted = groups.get("persisted")
    if persisted:
        out.append(f"MongoDB holds {persisted['in_mongodb']:,} of the {persisted['expected']:,} messages accepted "
                   f"so far, {persisted['drain_s']} s after the group phase.\n")
    return "\n".join(out)


def summary_table(report: dict) -> str:
    rows = ["| figure | target | measured | met |", "|---|---|---|---|"]
    for t in report["targets"]:
        measured = f"{_fmt(t['measured'], 2 if isinstance(t['measured'], float) and t['measured'] < 10 else 1)}"
        if t["unit"]:
            measured += f" {t['unit']}"
        met = "yes" if t["met"] else f"**no** — {t['gap']}"
        rows.append(f"| {t['name']} | {t['target']} | {measured} | {met} |")
    return "\n".join(rows)


def markdown(report: dict, charts_: list[Path]) -> str:
    meta = report["meta"]
    seed = report["seed_scenario"]
    th = report["throughput"]
    fo = report["fanout"]
    hist = report["history"]
    search = report["search"]
    stt = report["transcription"]
    setup = report["setup"]
    out: list[str] = []
    out.append(f"# Chattergram benchmark — {meta['started_at']} ({meta['mode']} mode)\n")
    out.append(f"{meta['cpus']} cores, API `chattergram serve --workers {meta['workers']}` (uvloop, httptools), "
               f"embedded Redis 8 + SecantusDB, {meta['wrk']}; RATE_LIMITS=off, STT_ENGINE=none, LOG_LEVEL=WARNING "
               f"(per-request log lines cost CPU). Load average at start {meta['load_average_at_start']}, at end "
               f"{meta['load_average_at_end']}; processes outside the benchmark used **{meta['cpu']['other_cores']} of "
               f"{meta['cpus']} cores** on average during the run (per phase: the last column below). The load "
               f"generator shares the cores too, so compare figures within this run (ratios) before absolute ones. "
               f"Total {meta['total_s']} s.\n")
    out.append("## Targets (issue #6)\n")
    out.append(summary_table(report) + "\n")
    out.append("## sendMessage over HTTP (wrk, keep-alive, one user's token per request)\n")
    out.append("| run | connections | requests | req/s | ok/s | mean ms | median | p90 | p95 | p99 | max | errors "
               "| timeouts | duration s | other load (cores) |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    out.append(_http_row(f"seed scenario: {seed['connections']:,} clients × {seed['requests_per_user']}, "
                         f"ramp-up {seed['ramp_up_s']:g} s", seed))
    for level in ("low", "high"):
        t = th[level]
        out.append(_http_row(f"sendMessage, {meta['config']['run_s']} s", t["ours"]))
        out.append(_http_row(f"ceiling (bare Strawberry + 1 pipeline), {meta['config']['run_s']} s", t["ceiling"]))
    out.append("")
    out.append("Where the cores went during each run (average cores used; the load is wrk, the fan-out "
               "receiver and the benchmark script):\n")
    out.append("| run | API workers | Redis | MongoDB-wire | load | outside the benchmark |")
    out.append("|---|---|---|---|---|---|")
    out.append(_cpu_row("seed scenario", seed))
    for level in ("low", "high"):
        t = th[level]
        out.append(_cpu_row(f"sendMessage c{t['connections']}", t["ours"]))
        out.append(_cpu_row(f"ceiling c{t['connections']}", t["ceiling"]))
    out.append("")
    for level in ("low", "high"):
        t = th[level]
        old = OLD_APP.get(f"c{t['connections']}_rps")
        vs_old = f"; the old app served ~{old:,} req/s here ({t['ours']['goodput_rps'] / old:.2f}×)" if old else ""
        out.append(f"- c{t['connections']}: sendMessage = **{t['ratio']:.0%}** of the ceiling in answers without "
                   f"error ({_fmt(t['ours']['goodput_rps'])} vs {_fmt(t['ceiling']['goodput_rps'])} per s){vs_old}.")
    sp = seed["persisted"]
    out.append(f"- Seed scenario: {seed['ok']:,} of {seed['expected']:,} messages answered without error, "
               f"{sp.get('new', sp['expected']):,} accepted by the API; all {seed['expected']:,} in MongoDB: "
               f"**{'yes' if sp['verified'] else 'NO'}** (MongoDB holds {sp['in_mongodb']:,} of the "
               f"{sp['expected']:,} messages accepted so far), {sp['drain_s']} s after the last answer. "
               f"(The old app under JMeter: {OLD_APP['jmeter_rps']} tx/s, mean {OLD_APP['jmeter_mean_ms']} ms, "
               f"median {OLD_APP['jmeter_median_ms']} ms, {OLD_APP['jmeter_total_s']} s total.)")
    for level in ("low", "high"):
        p = th[level]["ours"]["persisted"]
        out.append(f"- After sendMessage c{th[level]['connections']}: MongoDB holds {p['in_mongodb']:,} of the "
                   f"{p['expected']:,} messages accepted so far, {p['drain_s']} s after the last answer.")
    out.append(f"- Users: {setup['users']:,}; {setup['registered_via_api']} registered through the API "
               f"({setup['register_api_per_s']}/s, argon2id), {setup['created_directly']:,} created with the same "
               f"storage call and one precomputed hash in {setup['create_direct_s']} s.\n")
    out.append("## Fan-out (WebSocket `messageEvents`, graphql-transport-ws)\n")
    d = fo["deliver_latency_ms"]
    out.append(f"{fo['connected']:,}/{fo['subscribers']:,} subscribers over {fo['conversations']:,} conversations "
               f"(connected in {fo['connect_s']:.1f} s), {fo['messages_sent']:,} messages at "
               f"{fo['rate_achieved_per_s']:g}/s (target {fo['rate_target_per_s']:g}/s), "
               f"{fo['deliveries_received']:,}/{fo['deliveries_expected']:,} delivered to their receivers.\n")
    out.append("| send → deliver at the receiver | mean | median | p90 | p95 | p99 | max |")
    out.append("|---|---|---|---|---|---|---|")
    out.append(f"| ms | {d['mean']} | {d['median']} | {d['p90']} | {d['p95']} | {d['p99']} | {d['max']} |")
    if h := fo.get("send_http_latency_ms"):
        out.append(f"| of which the sendMessage HTTP request, ms | {h['mean']} | {h['median']} | {h['p90']} | "
                   f"{h['p95']} | {h['p99']} | {h['max']} |")
    parts = fo.get("cpu", {}).get("components", {})
    if parts:
        out.append(f"\nCores used during the traffic: API workers {parts.get('api')}, Redis {parts.get('redis')}, "
                   f"MongoDB-wire {parts.get('mongodb')}, load (sender and receiver processes) {parts.get('load')}, "
                   f"outside the benchmark {fo['cpu'].get('other_cores')}.")
    out.append("")
    rss = fo["worker_rss_kb"]
    out.append(f"Memory per idle subscription: **{fo['idle_subscription_kb']} KB** (API workers' RSS "
               f"{rss['before']:,} KB → {rss['idle_connected']:,} KB with the subscribers connected; "
               f"{rss['after_traffic']:,} KB after the traffic; {fo['websocket_compression']}).\n")
    if report.get("groups", {}).get("sizes"):
        out.append(groups_markdown(report["groups"]))
    out.append("## History (50-message page, one client, sequential)\n")
    out.append("| source | requests | mean ms | median | p90 | p95 | p99 | max | errors |")
    out.append("|---|---|---|---|---|---|---|---|---|")
    for key, label in (("hot", "hot (Redis)"), ("cold", "cold (MongoDB)")):
        h = hist[key]
        lat = h["latency_ms"]
        out.append(f"| {label}, page of {h['page_size']} | {h['requests']:,} | {lat['mean']} | {lat['median']} | "
                   f"{lat['p90']} | {lat['p95']} | {lat['p99']} | {lat['max']} | "
                   f"{h['graphql_errors'] + h['socket_errors'] + h['http_errors']} |")
    out.append(f"\nCold: a second instance on an empty Redis with HOT_WINDOW_DAYS=1e-5 (started in "
               f"{hist['cold_instance_start_s']} s): every conversation is marked archive-only, pages come from "
               f"MongoDB.\n")
    out.append("## Search and transcription\n")
    out.append(f"Search over {search['messages']:,} messages ({search['conversations']:,} conversations, "
               f"{search['queries']:,} queries, storage level): p50 {search['p50_ms']} ms, p90 {search['p90_ms']} ms, "
               f"p99 {search['p99_ms']} ms, max {search['max_ms']} ms.\n")
    if stt.get("clips"):
        out.append(f"Transcription ({stt['model']}, model load {stt['load_s']} s):\n")
        out.append("| audio | time | real-time factor |")
        out.append("|---|---|---|")
        for clip in stt["clips"]:
            out.append(f"| {clip['audio_s']:g} s | {clip['took_s']} s | {clip['rtf']} |")
        out.append("")
    else:
        out.append("Transcription: skipped.\n")
    logs = report.get("server_log", {})
    if any(logs.get(k, {}).get("levels") for k in ("api", "ceiling")):
        out.append("## Server log (errors and warnings during the run)\n")
        out.append("| server | message \\| exception | count |")
        out.append("|---|---|---|")
        for name in ("api", "ceiling"):
            for cause, n in logs.get(name, {}).get("top", []):
                escaped = cause.replace("|", "\\|")
                out.append(f"| {name} | {escaped} | {n:,} |")
        out.append("")
    if report.get("seed_scenario", {}).get("profile"):
        out.append("## Profile of the seed scenario (py-spy)\n")
        out.append(report["seed_scenario"]["profile"].get("markdown", ""))
    if report.get("profile"):
        out.append("## Profile of sendMessage under load (py-spy)\n")
        out.append(report["profile"].get("markdown", ""))
    out.append("## Charts\n")
    for path in charts_:
        out.append(f"![{path.stem}]({path.name})")
    out.append("")
    out.append("## How it is measured\n")
    out.append("wrk (`bench/graphql.lua`) sends authenticated GraphQL POSTs over keep-alive connections; each "
               "request carries one of the users' tokens, round-robin, so in the seed scenario every user sends "
               "exactly its N messages (wrk cannot bind a token to a connection: connections are anonymous "
               "carriers). The first request of each connection is delayed to spread them over the ramp-up; once a "
               "thread has all its answers it stops. Latency percentiles come from wrk's histogram (requests over "
               "wrk's 2 s timeout are counted as timeouts and left out of the percentiles). The ceiling app "
               "(`bench/ceiling_app.py`) takes the same request. Errors = GraphQL errors + non-2xx + socket errors.")
    return "\n".join(out) + "\n"


def summary_text(report: dict) -> str:
    lines = ["", "=" * 100, f"Chattergram benchmark ({report['meta']['mode']} mode) — targets", "=" * 100]
    for t in report["targets"]:
        unit = f" {t['unit']}" if t["unit"] else ""
        status = "MET " if t["met"] else "MISS"
        gap = f"  ({t['gap']})" if t["gap"] else ""
        lines.append(f"[{status}] {t['name']}: {_fmt(t['measured'], 2)}{unit}  target {t['target']}{gap}")
    groups = report.get("groups", {})
    if groups.get("sizes"):
        lines.append(f"Group fan-out, {groups['rate_per_s']:g} messages/s into one group:")
        for g in groups["sizes"]:
            d = g["deliver_latency_ms"]
            lines.append(f"  {g['members']:>4} members: {g['deliveries_per_s']:,.0f} deliveries/s, "
                         f"{g['deliveries_received']:,}/{g['deliveries_expected']:,} delivered "
                         f"({g['deliveries_lost']} lost), send→deliver p50 {d['median']} ms p99 {d['p99']} ms, "
                         f"CPU per delivery API {g['api_cpu_us_per_delivery']} µs Redis "
                         f"{g['redis_cpu_us_per_delivery']} µs")
    return "\n".join(lines)


def write_report(report: dict, out_dir: Path) -> dict[str, Any]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = report["meta"]["started_at"].replace(":", "").replace("-", "").replace("+0000", "Z")
    report["targets"] = targets(report)
    prefix = out_dir / stamp
    chart_paths = charts(report, prefix)
    md_path = prefix.with_suffix(".md")
    md_path.write_text(markdown(report, chart_paths))
    json_path = prefix.with_suffix(".json")
    slim = json.loads(json.dumps(report))
    slim["fanout"].pop("latencies_ms", None)  # raw samples: summarised above and charted
    wrk_runs = (slim["throughput"][k][s] for k in ("low", "high") for s in ("ours", "ceiling"))
    for run in [slim["seed_scenario"], *wrk_runs]:
        run.pop("wrk_text", None)
    json_path.write_text(json.dumps(slim, indent=2) + "\n")
    return {"json": json_path, "markdown": md_path, "charts": chart_paths, "summary_text": summary_text(report)}
