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
    "GraphQL operations by operation name, type and outcome (a subscription when it ends).",
    ["operation", "type", "outcome"],
)
GRAPHQL_LATENCY = Histogram(
    "chattergram_graphql_operation_seconds",
    "GraphQL query and mutation latency by operation name (subscriptions: see chattergram_graphql_subscription_seconds).",
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
    "Pub/sub subscriptions held by this instance: its WebSocket operations' and its one revocation listener.",
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
