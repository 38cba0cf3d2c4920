"""Prometheus metrics at `/metrics`: GraphQL operations, this process's sockets and
subscriptions, and the work waiting in Redis (outbox, transcription queue).

With several uvicorn workers the CLI sets PROMETHEUS_MULTIPROC_DIR, and `/metrics` (answered by
whichever worker gets the request) aggregates every worker's samples from that directory:
- per-process values are written by their own process as they change (a live sum);
- cluster-wide values (the backlog in Redis) are the same whichever worker reads them, so they
  are read by the answering worker at scrape time and added once, never summed over workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

if TYPE_CHECKING:
    from storage.backlog import Backlog

log = logging.getLogger(__name__)

BACKLOG_READ_SECONDS = 2.0  # with Redis unreachable, the scrape answers without the backlog

GRAPHQL_REQUESTS = Counter(
    "chattergram_graphql_operations_total",
    "GraphQL operations by operation name, type and outcome (a subscription when it ends).",
    ["operation", "type", "outcome"],
)
GRAPHQL_LATENCY = Histogram(
    "chattergram_graphql_operation_seconds",
    "GraphQL query and mutation latency by operation name (a subscription's lifetime is not one).",
    ["operation", "type"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
SUBSCRIPTION_LIFETIME = Histogram(
    "chattergram_graphql_subscription_seconds",
    "How long GraphQL subscriptions stayed open, by operation name, observed when each ends.",
    ["operation"],
    buckets=(1, 10, 60, 300, 1800, 3600, 4 * 3600, 24 * 3600),
)
LOCAL_SUBSCRIPTIONS = Gauge(
    "chattergram_local_subscriptions",
    "Pub/sub subscriptions held by this instance: its WebSocket operations' and its revocation and block "
    "listeners.",
    multiprocess_mode="livesum",
)
LOCAL_CONNECTIONS = Gauge(
    "chattergram_local_websocket_connections",
    "Authenticated WebSocket connections open on this instance.",
    multiprocess_mode="livesum",
)


def record_operation(operation: str, op_type: str, outcome: str, seconds: float) -> None:
    GRAPHQL_REQUESTS.labels(operation, op_type, outcome).inc()
    GRAPHQL_LATENCY.labels(operation, op_type).observe(seconds)


def record_subscription(operation: str, outcome: str, lifetime_seconds: float) -> None:
    GRAPHQL_REQUESTS.labels(operation, "subscription", outcome).inc()
    SUBSCRIPTION_LIFETIME.labels(operation).observe(lifetime_seconds)


def _multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def forget_this_process() -> None:
    """At shutdown: this process's live gauges (its sockets, its subscriptions) leave the sums."""
    if (directory := _multiprocess_dir()) is not None:
        multiprocess.mark_process_dead(os.getpid(), directory)


_LIVE_GAUGE_FILE = re.compile(r"^gauge_live\w+_(\d+)\.db$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def forget_dead_workers(directory: str) -> None:
    """Live gauges of workers that died without shutting down (killed, crashed): uvicorn starts a
    new one, whose values would otherwise add to the dead one's for ever."""
    pids = {int(m.group(1)) for name in os.listdir(directory) if (m := _LIVE_GAUGE_FILE.match(name))}
    for pid in pids:
        if not _alive(pid):
            multiprocess.mark_process_dead(pid, directory)


class BacklogCollector(Collector):
    """The cluster-wide gauges of one read of Redis (storage/backlog.py)."""

    def __init__(self, backlog: Backlog) -> None:
        self.backlog = backlog

    def collect(self) -> Iterable[Metric]:
        b = self.backlog
        yield GaugeMetricFamily(
            "chattergram_outbox_lag_seconds",
            "Age of the oldest change not yet persisted to MongoDB (pending or not yet read); 0 when none.",
            value=b.outbox_lag_seconds)
        yield GaugeMetricFamily(
            "chattergram_outbox_backlog", "Changes waiting in the outbox for MongoDB.", value=b.outbox_entries)
        depth = GaugeMetricFamily(
            "chattergram_transcription_queue_depth",
            "Transcription jobs waiting: queued (for a worker, or being transcribed) and delayed (a retry).",
            labels=["state"])
        depth.add_metric(["queued"], b.transcription_queued)
        depth.add_metric(["delayed"], b.transcription_delayed)
        yield depth
        yield GaugeMetricFamily(
            "chattergram_transcription_oldest_job_seconds",
            "The longest wait of a transcription job (a delayed one from its retry time on); 0 when none.",
            value=b.transcription_oldest_seconds)


async def metrics_endpoint(request: Request) -> Response:
    runtime = request.state.runtime
    # This process's own values, exact even if a change was missed (the others write theirs).
    LOCAL_SUBSCRIPTIONS.set(runtime.hub.local_subscriptions)
    LOCAL_CONNECTIONS.set(runtime.presence.local_connections)
    backlog: Backlog | None = None
    try:
        async with asyncio.timeout(BACKLOG_READ_SECONDS):
            backlog = await runtime.backlog.read()
    except Exception as exc:  # noqa: BLE001 - Redis down: the scrape still shows this process's metrics
        log.warning("backlog unreadable for /metrics", extra={"error": repr(exc)})
    if (directory := _multiprocess_dir()) is not None:
        with contextlib.suppress(OSError):
            forget_dead_workers(directory)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, directory)
    else:
        registry = REGISTRY
    body = generate_latest(registry)
    if backlog is not None:  # added once, by the process answering
        cluster = CollectorRegistry(auto_describe=False)
        cluster.register(BacklogCollector(backlog))
        body += generate_latest(cluster)
    return Response(body, media_type=CONTENT_TYPE_LATEST)

