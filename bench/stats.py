"""Figures shared by the benchmark phases and the report: latency summaries, the old app's numbers."""

from __future__ import annotations

# The old app on this kind of machine (issue #6): wrk, same embedded Redis and MongoDB-wire server.
OLD_APP = {"c50_rps": 1400, "c1000_rps": 1265, "c1000_p99_ms": 650, "jmeter_rps": 685, "jmeter_mean_ms": 1106,
           "jmeter_median_ms": 1033, "jmeter_total_s": 14}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(int(q / 100 * len(ordered)), len(ordered) - 1)]


def latency_summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {k: 0.0 for k in ("mean", "median", "p90", "p95", "p99", "max", "min")} | {"count": 0}
    return {
        "count": len(values),
        "mean": round(sum(values) / len(values), 2),
        "median": round(percentile(values, 50), 2),
        "p90": round(percentile(values, 90), 2),
        "p95": round(percentile(values, 95), 2),
        "p99": round(percentile(values, 99), 2),
        "max": round(max(values), 2),
        "min": round(min(values), 2),
    }
