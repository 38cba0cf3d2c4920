"""GraphQL over HTTP (https://graphql.github.io/graphql-over-http/): the media types and status
codes of /graphql, on the in-process app. `application/json` answers stay as they always were;
`application/graphql-response+json`, when the client asks for it, carries the spec's status codes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.utils.graphql import ME, GraphQLClient, register
from tests.utils.in_process import InProcessApp

GRAPHQL_RESPONSE = "application/graphql-response+json"
LOGIN_MUTATION = 'mutation { login(input: {login: "nobody", password: "wrong password"}) { token } }'
NEEDS_VARIABLE = "query M($id: ID!) { message(id: $id) { id } }"


@pytest.fixture
async def gql(in_process_app: InProcessApp) -> AsyncIterator[GraphQLClient]:
    async with in_process_app.client() as client:
        yield client


async def post(gql: GraphQLClient, body: Any, accept: str | None, token: str | None = None) -> httpx.Response:
    headers = {"Accept": accept} if accept else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return await gql.client.post(gql.url, content=json.dumps(body), headers={"Content-Type": "application/json",
                                                                             **headers})


def media_type(response: httpx.Response) -> str:
    return response.headers["content-type"].split(";")[0].strip()


@pytest.mark.parametrize("accept", [None, "application/json", "*/*"])
async def test_application_json_answers_are_unchanged(gql: GraphQLClient, accept: str | None) -> None:
    """Legacy clients: every well-formed request gets 200 and `data` (null on request errors)."""
    user = await register(gql)
    for query, token in [(ME, user.token), (ME, None), ("{", None), ("{ nope }", None), (NEEDS_VARIABLE, None)]:
        response = await post(gql, {"query": query}, accept, token)
        assert response.status_code == 200, (query, response.text)
        assert media_type(response) == "application/json"
        assert "data" in response.json(), response.text
    assert (await post(gql, {"query": None}, accept)).status_code == 400


async def test_graphql_response_json_uses_the_specs_status_codes(gql: GraphQLClient) -> None:
    user = await register(gql)

    ok = await post(gql, {"query": ME}, GRAPHQL_RESPONSE, user.token)
    assert ok.status_code == 200 and media_type(ok) == GRAPHQL_RESPONSE
    assert "charset=utf-8" in ok.headers["content-type"]
    assert ok.json()["data"]["me"]["id"] == user.id

    # A valid document that ran: 200 even though the field failed (data is null, the error has a path).
    field_error = await post(gql, {"query": ME}, GRAPHQL_RESPONSE)
    assert field_error.status_code == 200 and media_type(field_error) == GRAPHQL_RESPONSE
    body = field_error.json()
    assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

    # Request errors (nothing executed): 400, a GraphQL response without `data`.
    for query in ["{", "{ nope }", "{ me { id", NEEDS_VARIABLE]:
        response = await post(gql, {"query": query}, GRAPHQL_RESPONSE, user.token)
        assert response.status_code == 400, (query, response.text)
        assert media_type(response) == GRAPHQL_RESPONSE
        body = response.json()
        assert "data" not in body and body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body

    # Not a GraphQL-over-HTTP request at all: 400 too.
    for bad in [{}, {"query": None}, {"query": 42}, {"query": ME, "variables": [7]}]:
        assert (await post(gql, bad, GRAPHQL_RESPONSE, user.token)).status_code == 400, bad


@pytest.mark.parametrize(("accept", "expected"), [
    (f"{GRAPHQL_RESPONSE}, application/json;q=0.9", GRAPHQL_RESPONSE),
    (f"application/json, {GRAPHQL_RESPONSE}", "application/json"),  # equal preference: the first listed
    (f"application/json;q=0.5, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),
    (f"{GRAPHQL_RESPONSE};q=0, application/json", "application/json"),
    (f"{GRAPHQL_RESPONSE.upper()}", GRAPHQL_RESPONSE),
])
async def test_the_accept_header_picks_the_media_type(gql: GraphQLClient, accept: str, expected: str) -> None:
    response = await post(gql, {"query": "{"}, accept)
    assert media_type(response) == expected
    assert response.status_code == (400 if expected == GRAPHQL_RESPONSE else 200)


@pytest.mark.parametrize("accept", [None, GRAPHQL_RESPONSE])
async def test_mutations_over_get_are_405_with_allow_post(gql: GraphQLClient, accept: str | None) -> None:
    headers = {"Accept": accept} if accept else {}
    response = await gql.client.get(gql.url, params={"query": LOGIN_MUTATION}, headers=headers)
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == "POST"
    assert "token" not in response.text
    # Queries over GET still run.
    user = await register(gql)
    headers["Authorization"] = f"Bearer {user.token}"
    got = await gql.client.get(gql.url, params={"query": ME}, headers=headers)
    assert got.status_code == 200 and got.json()["data"]["me"]["id"] == user.id


async def test_multipart_uploads_answer_in_the_requested_media_type(gql: GraphQLClient) -> None:
    user = await register(gql)
    response = await gql.client.post(
        gql.url,
        data={"operations": json.dumps({"query": "mutation U($file: Upload!) { uploadAudio(file: $file) { id } }",
                                        "variables": {"file": None}}),
              "map": json.dumps({"0": ["variables.file"]})},
        files={"0": ("voice.ogg", b"not audio at all " * 100, "audio/ogg")},
        headers={"Authorization": f"Bearer {user.token}", "Accept": GRAPHQL_RESPONSE},
    )
    # The file reached the resolver (the Upload scalar works) and its field error is a 200.
    assert response.status_code == 200 and media_type(response) == GRAPHQL_RESPONSE
    assert response.json()["errors"][0]["extensions"] == {"code": "UNSUPPORTED_MEDIA_TYPE", "field": "file"}
