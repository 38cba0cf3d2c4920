"""The benchmark suite runs end to end and writes a well-formed report (no timing is asserted).

`python -m bench.run --mode smoke` is `make bench-quick` with tiny sizes: its own embedded
servers, the API with 2 workers, the ceiling app, 50 clients × 2 messages, 20 WebSocket
subscribers, history hot and cold, a small search seed and one short clip to transcribe.
"""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _numbers(node: dict, keys: list[str], where: str) -> None:
    for key in keys:
        assert key in node, f"{where}: missing {key!r}"
        value = node[key]
        assert isinstance(value, int | float) and not isinstance(value, bool), f"{where}.{key} = {value!r}"
        assert math.isfinite(value), f"{where}.{key} = {value!r}"


LATENCY = ["mean", "median", "p90", "p95", "p99", "max"]
HTTP_RUN = ["connections", "requests", "ok", "throughput_rps", "duration_s", "graphql_errors", "socket_errors",
            "http_errors", "timeouts"]


def test_bench_smoke_produces_a_well_formed_report(tmp_path: Path) -> None:
    if shutil.which("wrk") is None:
        pytest.fail("wrk is not installed: `make test` installs it (apt-get install wrk)")
    if importlib.util.find_spec("matplotlib") is None:
        pytest.fail("matplotlib is not installed: `make test` installs the bench extra (pip install -e '.[bench]')")
    out = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--mode", "smoke", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]

    reports = list(out.glob("*.json"))
    assert len(reports) == 1, reports
    report = json.loads(reports[0].read_text())
    stamp = reports[0].stem

    assert report["meta"]["mode"] == "smoke"
    seed = report["seed_scenario"]
    _numbers(seed, HTTP_RUN, "seed_scenario")
    _numbers(seed["latency_ms"], LATENCY, "seed_scenario.latency_ms")
    assert seed["expected"] == 100  # 50 clients × 2 messages, exactly
    _numbers(seed["persisted"], ["expected", "in_mongodb", "drain_s"], "seed_scenario.persisted")
    assert seed["persisted"]["verified"] is True, seed["persisted"]

    for level in ("low", "high"):
        t = report["throughput"][level]
        _numbers(t, ["connections", "ratio"], f"throughput.{level}")
        for side in ("ours", "ceiling"):
            _numbers(t[side], HTTP_RUN, f"throughput.{level}.{side}")
            _numbers(t[side]["latency_ms"], LATENCY, f"throughput.{level}.{side}.latency_ms")
        assert t["ours"]["persisted"]["verified"] is True, t["ours"]["persisted"]

    fo = report["fanout"]
    _numbers(fo, ["subscribers", "connected", "messages_sent", "deliveries_received", "idle_subscription_kb",
                  "rate_achieved_per_s"], "fanout")
    _numbers(fo["deliver_latency_ms"], LATENCY, "fanout.deliver_latency_ms")
    assert fo["connected"] == fo["subscribers"] == 20

    for source in ("hot", "cold"):
        h = report["history"][source]
        _numbers(h, ["requests", "page_size"], f"history.{source}")
        _numbers(h["latency_ms"], LATENCY, f"history.{source}.latency_ms")
        assert h["page_size"] == 50

    _numbers(report["search"], ["messages", "p50_ms", "p90_ms", "p99_ms", "max_ms"], "search")
    clips = report["transcription"]["clips"]
    assert clips, report["transcription"]
    for clip in clips:
        _numbers(clip, ["audio_s", "took_s", "rtf"], "transcription.clips[]")

    assert report["targets"], "no targets evaluated"
    for target in report["targets"]:
        assert isinstance(target["met"], bool) and target["name"] and target["target"]

    summary = out / f"{stamp}.md"
    assert summary.exists()
    text = summary.read_text()
    assert "## Targets" in text and "| figure | target | measured | met |" in text
    charts = sorted(p.name for p in out.glob(f"{stamp}-*.png"))
    assert charts == sorted(f"{stamp}-{name}.png" for name in (
        "latency-percentiles", "latency-distribution", "throughput", "fanout", "throughput-comparison"))
    for chart in out.glob("*.png"):
        assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 5000
