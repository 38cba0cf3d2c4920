from __future__ import annotations

import random

from storage.ids import _encode, first_id_at, id_timestamp_ms, is_valid_id, new_id


def test_ids_are_valid_sortable_and_carry_time() -> None:
    ids = [new_id(now_ms=1_700_000_000_000 + i) for i in range(100)]
    assert all(is_valid_id(i) and len(i) == 26 for i in ids)
    assert ids == sorted(ids)
    assert id_timestamp_ms(ids[5]) == 1_700_000_000_005
    assert len(set(new_id() for _ in range(1000))) == 1000


def test_invalid_ids() -> None:
    for bad in ["", "abc", "01ABCDEFGHJKMNPQRSTVWXYZ0I", "8" + "0" * 25, "01abcdefghjkmnpqrstvwxyz00"[:25]]:
        assert not is_valid_id(bad)



def test_the_encoding_is_crockford_base32_five_bits_a_character_from_the_top() -> None:
    rng = random.Random(7)
    for value in [0, 1, 2**128 - 1, *(rng.getrandbits(rng.randint(1, 128)) for _ in range(2000))]:
        assert _encode(value) == "".join(CROCKFORD[(value >> (5 * (25 - i))) & 31] for i in range(26))
    assert first_id_at(1) == "0000000001" + "0" * 16  # 48 bits of milliseconds, then 80


CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
