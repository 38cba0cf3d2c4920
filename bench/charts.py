"""The benchmark report's PNG charts (matplotlib): latency percentiles and distribution,
throughput against the ceiling, fan-out and group fan-out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.stats import OLD_APP


def _approx_histogram(percentiles_ms: list[list[float]], total: int) -> tuple[list[float], list[float]]:
    """Latency samples rebuilt from wrk's 0.5-percentile steps (each step holds 0.5% of the
    requests), for a JMeter-like distribution chart."""
    values, weights = [], []
    previous = 0.0
    for p, ms in percentiles_ms:
        if p > 100:
            break
        values.append(ms)
        weights.append((p - previous) / 100 * total)
        previous = p
    return values, weights


def charts(report: dict, prefix: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths: list[Path] = []

    def save(fig: Any, suffix: str) -> None:
        path = prefix.with_name(f"{prefix.name}{suffix}.png")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)

    seed = report["seed_scenario"]
    runs = [(f"seed scenario ({seed['connections']} clients × {seed['requests_per_user']}, "
             f"ramp {seed['ramp_up_s']:g} s)", seed, "tab:blue", "-")]
    for level in ("low", "high"):
        t = report["throughput"][level]
        runs.append((f"sendMessage c{t['connections']}", t["ours"], "tab:orange" if level == "low" else "tab:red", "-"))
        runs.append((f"ceiling c{t['connections']}", t["ceiling"], "tab:orange" if level == "low" else "tab:red", "--"))

    # 1. Response time percentiles (JMeter's "Response Time Percentiles").
    fig, ax = plt.subplots(figsize=(10, 5.5))
    for label, run, color, style in runs:
        pts = [p for p in run["percentiles_ms"] if p[0] <= 100]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], style, color=color, label=label)
    ax.set_xlabel("percentile (%)")
    ax.set_ylabel("response time (ms)")
    ax.set_title("sendMessage response time percentiles (wrk)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    save(fig, "-latency-percentiles")

    # 2. Response time distribution (JMeter's "Response Time Distribution").
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    high = report["throughput"]["high"]
    panels = [(runs[0][0], seed), (f"sendMessage c{high['connections']}", high["ours"])]
    for ax, (label, run) in zip(axes, panels, strict=True):
        values, weights = _approx_histogram(run["percentiles_ms"], run["requests"])
        ax.hist(values, bins=40, weights=weights, color="tab:blue", edgecolor="white")
        lat = run["latency_ms"]
        for key, color in (("median", "green"), ("p90", "orange"), ("p99", "red")):
            ax.axvline(lat[key], color=color, linestyle="--", label=f"{key} {lat[key]:.0f} ms")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("response time (ms)")
        ax.set_ylabel("requests")
        ax.legend(fontsize=8)
    fig.suptitle("Response time distribution (rebuilt from wrk's percentiles in 0.5% steps)", fontsize=10)
    save(fig, "-latency-distribution")

    # 3. Throughput over time (answers per wall-clock second, from the wrk script).
    fig, ax = plt.subplots(figsize=(10, 5))
    for label, run, color, style in runs:
        points = run["timeline"]
        if points:
            ax.plot([t for t, _ in points], [r for _, r in points], style, color=color, marker=".", label=label)
    ax.set_xlabel("seconds since the first request")
    ax.set_ylabel("responses / s")
    ax.set_title("Throughput over time (answers per second; 0.5 s windows for runs under 10 s)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    save(fig, "-throughput")

    # 4. Fan-out delivery latency.
    fo = report["fanout"]
    lat = fo.get("latencies_ms") or [0.0]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    axes[0].hist(lat, bins=50, color="tab:green", edgecolor="white")
    axes[0].set_xlabel("send → deliver (ms)")
    axes[0].set_ylabel("deliveries")
    ordered = sorted(lat)
    axes[1].plot([100 * (i + 1) / len(ordered) for i in range(len(ordered))], ordered, color="tab:green")
    axes[1].set_xlabel("percentile (%)")
    axes[1].set_ylabel("send → deliver (ms)")
    axes[1].grid(True, alpha=0.3)
    fig.suptitle(f"Fan-out: {fo['subscribers']} subscribers, {fo['rate_target_per_s']:g} messages/s "
                 f"(latency at the receiver)", fontsize=10)
    save(fig, "-fanout")

    # 5. Group fan-out: latency and CPU per delivery against the group's size.
    sizes = report.get("groups", {}).get("sizes", [])
    if sizes:
        members = [g["members"] for g in sizes]
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
        for key, color in (("median", "tab:green"), ("p99", "tab:red")):
            axes[0].plot(members, [g["deliver_latency_ms"][key] for g in sizes], marker="o", color=color,
                         label=f"send → deliver {key}")
        axes[0].plot(members, [g["send_http_latency_ms"]["p99"] for g in sizes], marker=".", linestyle="--",
                     color="tab:gray", label="sendMessage HTTP p99")
        axes[0].set_ylabel("ms")
        growth = report["groups"].get("growth", {})
        for component, label, color in (("api", "API workers", "tab:blue"), ("redis", "Redis", "tab:orange")):
            per_message = [g[f"{component}_cpu_us_per_delivery"] * g["members"] / 1000 for g in sizes]
            axes[1].plot(members, per_message, "o", color=color, label=label)
            if fit := growth.get(component):
                axes[1].plot(members, [fit["ms_per_message"] + fit["us_per_member"] / 1000 * m for m in members],
                             "--", color=color, label=f"{label}: {fit['ms_per_message']:g} ms "
                             f"+ {fit['us_per_member']:g} µs per member")
        axes[1].set_ylabel("CPU ms per message (all its deliveries)")
        for ax in axes:
            ax.set_xlabel("group members")
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=8)
            ax.set_ylim(bottom=0)
        fig.suptitle(f"Group fan-out: {report['groups']['rate_per_s']:g} messages/s into one group, every member "
                     f"subscribed", fontsize=10)
        save(fig, "-groups")

    # 5. Throughput, ours vs. the ceiling vs. the old app.
    fig, ax = plt.subplots(figsize=(8, 4.5))
    labels, values, colors = [], [], []
    for level in ("low", "high"):
        t = report["throughput"][level]
        c = t["connections"]
        labels += [f"ceiling\nc{c}", f"sendMessage\nc{c}"]
        values += [t["ceiling"]["goodput_rps"], t["ours"]["goodput_rps"]]
        colors += ["tab:gray", "tab:blue"]
        old = OLD_APP.get(f"c{c}_rps")
        if old:
            labels.append(f"old app\nc{c} (issue)")
            values.append(old)
            colors.append("tab:brown")
    bars = ax.bar(labels, values, color=colors)
    ax.bar_label(bars, fmt="%.0f", fontsize=8)
    ax.set_ylabel("requests / s")
    ax.set_title("sendMessage answers without error per second (wrk, same run; old app from the issue)", fontsize=10)
    save(fig, "-throughput-comparison")
    return paths
