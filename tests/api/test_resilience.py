"""Restarts, a Redis wipe and a MongoDB outage, on dedicated servers."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import redis
from pymongo import errors as mongo_errors

from api.app_server import AppServer
from api.dev_servers import EmbeddedServers, start_mongo, start_redis
from tests.conftest import mongodb_url
from tests.utils.graphql import LOGIN, ME, PASSWORD, GraphQLClient, register

pytestmark = pytest.mark.slow  # started first by `make test` (tests/conftest.py)

USERS = "query { users(first: 200) { edges { node { id username } } } }"


async def test_users_survive_restart_and_redis_wipe(
    app_factory: Callable[..., AppServer], dev_servers: EmbeddedServers, tmp_path: Path
) -> None:
    own_redis = start_redis(tmp_path / "redis")
    try:
        server = app_factory(
            redis_url=own_redis.url, mongodb_url=mongodb_url(dev_servers, "resilience_restart")
        ).start()
        async with httpx.AsyncClient(timeout=30) as http:
            gql = GraphQLClient(http, server.graphql_url)
            alice, bob = await register(gql), await register(gql)

            server.restart()
            assert (await gql.ok(ME, token=alice.token))["me"]["username"] == alice.username

            server.stop()
            client = redis.Redis.from_url(own_redis.url)
            client.flushall()  # Redis lost everything while the app was down
            assert client.dbsize() == 0
            server.start()
            # Reconciled at start-up, before any request touched those users.
            assert client.exists(f"cg:user:{alice.id}", f"cg:user:{bob.id}") == 2
            client.close()

            logged_in = (await gql.ok(LOGIN, {"input": {"login": bob.email, "password": PASSWORD}}))["login"]
            assert logged_in["user"]["id"] == bob.id
            listed = {e["node"]["id"] for e in (await gql.ok(USERS, token=alice.token))["users"]["edges"]}
            assert {alice.id, bob.id} <= listed
        server.stop()
    finally:
        own_redis.stop()


async def test_database_failure_is_masked_and_logged(
    app_factory: Callable[..., AppServer], dev_servers: EmbeddedServers, tmp_path: Path
) -> None:
    own_mongo = start_mongo(tmp_path / "mongo")
    own_redis = start_redis(tmp_path / "redis")
    server = app_factory(
        redis_url=own_redis.url,
        mongodb_url=f"{own_mongo.url}?serverSelectionTimeoutMS=1500&connectTimeoutMS=1000",
    )
    try:
        server.start()
        async with httpx.AsyncClient(timeout=30) as http:
            gql = GraphQLClient(http, server.graphql_url)
            user = await register(gql)
            own_mongo.kill()
            response = await http.post(server.graphql_url, json={
                "query": "mutation L($i: LoginInput!) { login(input: $i) { token } }",
                "variables": {"i": {"login": user.username, "password": PASSWORD}},
            })
            text = response.text
            error = response.json()["errors"][0]
            assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
            error_id = error["extensions"]["errorId"]
            assert error["message"] == f"Internal server error (error id {error_id})"
            for leak in ("Traceback", "pymongo", "Mongo", "ServerSelection", "127.0.0.1", ".py", "/"):
                assert leak not in text.replace("\\/", ""), leak
            entries = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
            logged = [entry["exc"] for entry in entries if entry.get("error_id") == error_id]
            assert len(logged) == 1, "the error id is in the server log, with the traceback"
            # The cause ends it. Which error pymongo raises is a race: a server selection timeout if
            # its monitor saw the kill first, else the pooled connection's AutoReconnect.
            cause = logged[0].splitlines()[-1].split(":")[0].removeprefix("pymongo.errors.")
            assert logged[0].startswith("Traceback")
            assert issubclass(getattr(mongo_errors, cause), mongo_errors.ConnectionFailure), logged[0]
            ready = await http.get(f"{server.url}/readyz")
            assert ready.status_code == 503 and ready.json()["mongodb"] != "ok"
    finally:
        server.stop()
        own_mongo.stop()
        own_redis.stop()
