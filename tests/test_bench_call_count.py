"""bench.call_count measures the app it is run from: the profile it takes covers the sends
(the resolver and the send script's client) and the persister's archiving."""

from __future__ import annotations

import pstats

from bench.call_count import measure


async def test_call_count_profiles_the_send_path_and_the_persister() -> None:
    figures, profile = await measure(5)
    assert figures["requests"] == 5
    assert figures["calls_per_request"] > 0
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    profiled = {(path.split("/")[-2], name) for path, _, name in stats if path.count("/") >= 1}
    assert ("resolvers", "send_message") in profiled
    assert ("storage", "_send_and_read") in profiled
    assert ("storage", "persist") in profiled
