from __future__ import annotations

import pytest

from resolvers.cursors import decode_cursor, encode_cursor
from resolvers.errors import InvalidInput


def test_round_trip() -> None:
    assert decode_cursor(encode_cursor("user", "01ABC"), "user", field="after") == "01ABC"


@pytest.mark.parametrize("cursor", ["", "%%%", "dXNlcg", encode_cursor("msg", "1"), "x" * 500, "\u00e9\u00e9"])
def test_malformed_cursors_name_the_field(cursor: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        decode_cursor(cursor, "user", field="after")
    assert caught.value.extensions == {"field": "after"}
