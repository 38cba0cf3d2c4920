"""Resolver rules run against the app in this test process (see tests/utils/in_process.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.utils.graphql import GraphQLClient
from tests.utils.in_process import InProcessApp


@pytest.fixture
async def gql(in_process_app: InProcessApp) -> AsyncIterator[GraphQLClient]:
    async with in_process_app.client() as client:
        yield client
