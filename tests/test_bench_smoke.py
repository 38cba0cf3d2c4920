"""The benchmark suite runs end to end and writes a well-formed report (no timing is asserted).

`python -m bench.run --mode smoke` is `make bench-quick` with tiny sizes: its own embedded
servers, the API with 2 workers, the ceiling app, 50 clients × 2 messages, 20 WebSocket
subscribers, history hot and cold, groups of 4 and 8 members at 10 messages/s for 1 s, a small
search seed and one short clip to transcribe.
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

pytestmark = pytest.mark.slow  # started first by `make test` (tests/conftest.py)

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

    groups = report["groups"]
    assert [g["members"] for g in groups["sizes"]] == [4, 8]
    for g in groups["sizes"]:
        where = f"groups[{g['members']}]"
        _numbers(g, ["connected", "messages_sent", "deliveries_expected", "deliveries_received", "deliveries_lost",
                     "deliveries_per_s", "api_cpu_us_per_delivery", "redis_cpu_us_per_delivery"], where)
        _numbers(g["deliver_latency_ms"], LATENCY, f"{where}.deliver_latency_ms")
        assert g["connected"] == g["members"] and g["subscribers_without_event_after_prime"] == 0, g
        assert g["send_errors"] == 0, g
        # Every member gets every message, its sender included: nothing lost, nothing twice.
        assert g["deliveries_expected"] == g["messages_sent"] * g["members"] > 0, g
        assert g["deliveries_lost"] == 0 and g["duplicate_deliveries"] == 0, g
    for component in ("api", "redis"):
        _numbers(groups["growth"][component], ["us_per_member", "ms_per_message"], f"groups.growth.{component}")
    assert groups["persisted"]["in_mongodb"] == groups["persisted"]["expected"], groups["persisted"]

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
        "latency-percentiles", "latency-distribution", "throughput", "fanout", "groups", "throughput-comparison"))
    for chart in out.glob("*.png"):
        assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 5000
