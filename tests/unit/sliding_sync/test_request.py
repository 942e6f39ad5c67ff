"""Request parsing, required_state matching and list selection (pure)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from twisted.internet import defer

from homeserver.api.errors import MatrixError
from homeserver.sync.sliding.lists import candidates, compute_lists
from homeserver.sync.sliding.request import parse_request, parse_required_state


def test_required_state_pairs_and_specials() -> None:
    rs = parse_required_state([["m.room.name", ""], ["m.room.member", "$LAZY"], ["m.room.member", "$ME"],
                               ["*", "*"]], "rs").resolved("@me:x")
    assert rs.lazy and rs.needs_full_map()
    assert rs.matches("anything", "x")
    rs2 = parse_required_state([["m.room.member", "$ME"], ["m.room.power_levels", "*"], ["*", ""]], "rs").resolved("@me:x")
    assert rs2.matches("m.room.member", "@me:x") and not rs2.matches("m.room.member", "@other:x")
    assert rs2.matches("m.room.power_levels", "weird") and rs2.matches("m.room.topic", "")
    assert not rs2.matches("m.room.topic", "k")
    new_form = parse_required_state({"include": [{}], "exclude": [{"type": "m.room.create", "state_key": ""}],
                                     "lazy_members": True}, "rs")
    assert new_form.lazy and new_form.matches("m.room.name", "") and not new_form.matches("m.room.create", "")
    assert new_form.signature() != rs.signature()
    union = new_form.union(parse_required_state([["m.room.create", ""]], "rs"))
    assert union.matches("m.room.create", "")


def test_parse_both_request_shapes() -> None:
    old = parse_request("@u:x", "D", {"lists": {"a": {"ranges": [[0, 9], [20, 29]], "timeline_limit": 500,
                                                      "filters": {"is_invite": True}}}}, "p_1", 3000, None)
    assert old.pos == "p_1" and old.timeout_ms == 3000
    lst = old.lists[0]
    assert lst.ranges == ((0, 9), (20, 29)) and lst.config.timeline_limit == 100 and lst.filters.is_invite is True
    new = parse_request("@u:x", "D", {"pos": "p_2", "timeout": 10, "lists": {"a": {"range": [0, 4], "timeline_limit": 1,
                                                                                      "filters": {"is_invited": False}}}},
                        None, None, None)
    assert new.pos == "p_2" and new.timeout_ms == 10 and new.lists[0].ranges == ((0, 4),)
    assert new.lists[0].filters.is_invite is False
    with pytest.raises(MatrixError):
        parse_request("@u:x", "D", {"lists": {"a": {"ranges": [[1]]}}}, None, None, None)


def _m(room: str, membership: str, pos: int, sender: str = "@u:x") -> SimpleNamespace:
    return SimpleNamespace(room_id=room, membership=membership, stream_ordering=pos, sender=sender, event_id="$" + room)


def test_candidates_and_ranges() -> None:
    ms = {
        "!join": _m("!join", "join", 1), "!inv": _m("!inv", "invite", 2, "@v:x"), "!ign": _m("!ign", "invite", 3, "@bad:x"),
        "!kicked": _m("!kicked", "leave", 4, "@v:x"), "!left": _m("!left", "leave", 5), "!left_seen": _m("!left_seen", "leave", 6),
    }
    c = candidates("@u:x", ms, {"!left_seen"}, frozenset({"@bad:x"}))
    assert set(c) == {"!join", "!inv", "!kicked", "!left_seen"}
    req = parse_request("@u:x", "D", {"lists": {"top": {"ranges": [[0, 1], [3, 10]]}, "all": {}}}, None, None, None)

    async def activity(rooms: list[str]) -> dict[str, int]:
        return {"!join": 100, "!inv": 50, "!kicked": 60, "!left_seen": 10}

    result = defer.ensureDeferred(compute_lists(req, c, activity, None, lambda r: False))  # type: ignore[arg-type]
    out = result.result  # no real awaits: already done
    assert out.in_lists["all"] == ["!join", "!kicked", "!inv", "!left_seen"]
    assert out.in_lists["top"] == ["!join", "!kicked", "!left_seen"]
    assert out.counts == {"all": 4, "top": 4}
    assert out.matched["!join"][0] == ["all", "top"]


def test_wildcard_types() -> None:
    rs = parse_required_state([["m.room.member", "*"], ["m.call.member", "*"], ["m.room.name", ""]], "rs")
    assert rs.wildcard_types() == ["m.call.member", "m.room.member"] and rs.needs_full_map()
    assert parse_required_state([["*", ""]], "rs").wildcard_types() is None
    assert parse_required_state([["m.room.name", ""]], "rs").wildcard_types() == []
