"""Sync token encoding: round trips, forward compatibility, malformed input."""

from __future__ import annotations

import pytest

from homeserver.sync.token import STREAMS, InvalidToken, StreamToken


def test_round_trip_named_positions() -> None:
    t = StreamToken.from_dict({"events": 12, "typing": 3, "device_lists": 9})
    s = t.to_string()
    assert s.startswith("s1_")
    back = StreamToken.parse(s)
    assert back == t
    assert back["events"] == 12 and back["typing"] == 3 and back["receipts"] == 0


def test_per_writer_positions_parse_without_changing_format() -> None:
    """A later multi-writer token (``N~writer.pos``) is already accepted by version 1."""
    s = "s1_10~w1.14~w2.12_1_2_3_4_5_6"
    t = StreamToken.parse(s)
    assert t["events"] == 10
    assert t.writers[0] == (("w1", 14), ("w2", 12))
    assert t.to_string() == s


def test_older_tokens_with_fewer_streams_are_padded() -> None:
    t = StreamToken.parse("s1_5_6")
    assert t["events"] == 5 and t["account_data"] == 6 and t["device_lists"] == 0


def test_advance_never_goes_back() -> None:
    t = StreamToken.from_dict({"events": 5})
    assert t.copy_and_advance("events", 3) is t
    assert t.copy_and_advance("events", 8)["events"] == 8


@pytest.mark.parametrize(
    "bad",
    ["", "abc", "s2_1_2", "s1_", "s1_-1", "s1_1_x", "s1_" + "_".join(["1"] * (len(STREAMS) + 1)), "s1_1~_2", "s1_" + "9" * 30, "x" * 5000],
)
def test_malformed_tokens_are_invalid_param(bad: str) -> None:
    with pytest.raises(InvalidToken) as e:
        StreamToken.parse(bad)
    assert e.value.status == 400 and e.value.errcode == "M_INVALID_PARAM"
