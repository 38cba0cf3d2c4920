from __future__ import annotations

from storage.ids import id_timestamp_ms, is_valid_id, new_id


def test_ids_are_valid_sortable_and_carry_time() -> None:
    ids = [new_id(now_ms=1_700_000_000_000 + i) for i in range(100)]
    assert all(is_valid_id(i) and len(i) == 26 for i in ids)
    assert ids == sorted(ids)
    assert id_timestamp_ms(ids[5]) == 1_700_000_000_005
    assert len(set(new_id() for _ in range(1000))) == 1000


def test_invalid_ids() -> None:
    for bad in ["", "abc", "01ABCDEFGHJKMNPQRSTVWXYZ0I", "8" + "0" * 25, "01abcdefghjkmnpqrstvwxyz00"[:25]]:
        assert not is_valid_id(bad)
