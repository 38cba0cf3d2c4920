"""Every kind of bad token is refused with UNAUTHENTICATED (in-process)."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from tests.conftest import TEST_JWT_SECRET
from tests.utils.graphql import ME, GraphQLClient, register


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def forged_tokens(user_id: str) -> dict[str, str]:
    now = int(time.time())
    claims = {"sub": user_id, "iat": now, "exp": now + 3600}
    return {
        "expired": jwt.encode({**claims, "iat": now - 7200, "exp": now - 3600}, TEST_JWT_SECRET, algorithm="HS256"),
        "other secret": jwt.encode(claims, "another-secret-" + "y" * 60, algorithm="HS256"),
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.",
        "alg none signed": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.c2ln",
        "HS512 with our secret": jwt.encode(claims, TEST_JWT_SECRET, algorithm="HS512"),
        "no exp": jwt.encode({"sub": user_id, "iat": now}, TEST_JWT_SECRET, algorithm="HS256"),
        "no sub": jwt.encode({"iat": now, "exp": now + 3600}, TEST_JWT_SECRET, algorithm="HS256"),
        "garbage": "not.a.token",
        "bearer without token": "   x",
    }


@pytest.mark.parametrize("kind", list(forged_tokens("x")))
async def test_bad_tokens_are_unauthenticated(gql: GraphQLClient, kind: str) -> None:
    user = await register(gql)
    token = forged_tokens(user.id)[kind]
    response = await gql.client.post(gql.url, json={"query": ME}, headers={"Authorization": f"Bearer {token}"})
    body = response.json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", body


async def test_no_token_and_a_valid_token(gql: GraphQLClient) -> None:
    user = await register(gql)
    assert (await gql.error(ME))["extensions"]["code"] == "UNAUTHENTICATED"
    assert (await gql.ok(ME, token=user.token))["me"]["id"] == user.id


async def test_token_carries_only_standard_claims(gql: GraphQLClient) -> None:
    user = await register(gql)
    header = jwt.get_unverified_header(user.token)
    claims = jwt.decode(user.token, TEST_JWT_SECRET, algorithms=["HS256"])
    assert header["alg"] == "HS256"
    # Registered claims only (RFC 7519): `jti` names the token for logout and carries the
    # user's token generation (resolvers/tokens.py).
    assert set(claims) == {"sub", "iat", "exp", "jti"} and claims["sub"] == user.id
    assert claims["exp"] > claims["iat"]
