"""Prometheus metrics: requests and latencies per GraphQL operation name.

With several uvicorn workers the CLI sets PROMETHEUS_MULTIPROC_DIR, and `/metrics`
aggregates every worker's samples.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.requests import Request
from starlette.responses import Response

GRAPHQL_REQUESTS = Counter(
    "chattergram_graphql_operations_total",
    "GraphQL operations by operation name, type and outcome.",
    ["operation", "type", "outcome"],
)
GRAPHQL_LATENCY = Histogram(
    "chattergram_graphql_operation_seconds",
    "GraphQL operation latency by operation name.",
    ["operation", "type"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
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


async def metrics_endpoint(request: Request) -> Response:
    runtime = request.state.runtime
    LOCAL_SUBSCRIPTIONS.set(runtime.hub.local_subscriptions)
    LOCAL_CONNECTIONS.set(runtime.presence.local_connections)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        body = generate_latest()
    return Response(body, media_type=CONTENT_TYPE_LATEST)
