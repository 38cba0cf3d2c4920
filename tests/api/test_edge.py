"""The HTTP edge: health, readiness, metrics, GraphiQL, GET queries, WebSocket protocols."""

from __future__ import annotations

import json

import httpx
import pytest
import websockets

from api.app_server import AppServer
from tests.utils.graphql import ME, GraphQLClient, register


async def test_health_and_readiness(app: AppServer, http: httpx.AsyncClient) -> None:
    assert (await http.get(f"{app.url}/healthz")).json() == {"status": "ok"}
    ready = await http.get(f"{app.url}/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "redis": "ok", "mongodb": "ok"}


async def test_metrics_count_operations_by_name(app: AppServer, gql: GraphQLClient, http: httpx.AsyncClient) -> None:
    user = await register(gql)
    for _ in range(3):
        await gql.ok(ME, token=user.token)
    await gql.error(ME)
    text = (await http.get(f"{app.url}/metrics")).text
    ok_line = next(line for line in text.splitlines()
                   if line.startswith('chattergram_graphql_operations_total{operation="Me",outcome="ok"'))
    assert float(ok_line.split()[-1]) >= 3
    assert 'chattergram_graphql_operations_total{operation="Me",outcome="error",type="query"}' in text
    assert 'chattergram_graphql_operation_seconds_bucket{le="0.1",operation="Register",type="mutation"}' in text


async def test_every_request_is_logged_once_with_operation_user_duration_outcome(
    app: AppServer, gql: GraphQLClient
) -> None:
    user = await register(gql)
    await gql.raw("query LogProbe { me { id } }", token=user.token)
    lines = [json.loads(line) for line in app.log().splitlines() if '"LogProbe"' in line]
    assert len(lines) == 1
    entry = lines[0]
    assert entry["operation"] == "LogProbe" and entry["user"] == user.id
    assert entry["outcome"] == "ok" and entry["duration_ms"] > 0


async def test_graphiql_and_get_queries(app: AppServer, http: httpx.AsyncClient, gql: GraphQLClient) -> None:
    page = await http.get(app.graphql_url, headers={"Accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()
    user = await register(gql)
    got = await http.get(app.graphql_url, params={"query": ME}, headers={"Authorization": f"Bearer {user.token}"})
    assert got.json()["data"]["me"]["id"] == user.id
    mutation_via_get = await http.get(
        app.graphql_url, params={"query": "mutation { login(input: {login: \"a\", password: \"b\"}) { token } }"}
    )
    assert mutation_via_get.status_code == 405 and mutation_via_get.headers["allow"] == "POST"  # POST only
    assert "token" not in mutation_via_get.text


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_both_websocket_protocols_are_accepted(app: AppServer, gql: GraphQLClient, protocol: str) -> None:
    user = await register(gql)
    for payload in ({"Authorization": f"Bearer {user.token}"}, {"authorization": f"bearer {user.token}"},
                    {"token": user.token}):
        async with websockets.connect(app.ws_url, subprotocols=[protocol]) as ws:  # type: ignore[list-item]  # str for its Subprotocol NewType
            assert ws.subprotocol == protocol
            await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
