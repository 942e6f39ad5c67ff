"""State resolution on hand-built forked DAGs, plus order/duplication properties."""

from __future__ import annotations

import pytest
from events_helpers import Room, standard_room
from hypothesis import given, settings
from hypothesis import strategies as st

from homeserver.events.state_res import MissingEventError, resolve_state

C = "@creator:test"
M = "@mod:test"
A = "@alice:test"
PL = ("m.room.power_levels", "")
JR = ("m.room.join_rules", "")
V2_VERSIONS = ["2", "6", "10", "11", "12"]


def _users(room: Room, users: dict[str, int]) -> dict[str, int]:
    out = dict(users)
    if not room.rv.privileged_creators:
        out[C] = 100
    return out


def resolve(room: Room, *heads: str) -> dict:
    return resolve_state(room.rv, [room.state_after[h] for h in heads], room.events)


def merge(room: Room, *heads: str) -> str:
    """Add a dummy message merging ``heads`` with their resolved state."""
    state = resolve(room, *heads)
    return room.add(
        C, "m.room.message", None, {"body": "merge"}, prev=list(heads), state=state
    ).event_id


def ban_race(version: str) -> tuple[Room, str, str, str, str]:
    room = standard_room(version, users={M: 50})
    room.add(M, "m.room.member", M, {"membership": "join"}, check=True)
    room.add(A, "m.room.member", A, {"membership": "join"}, check=True)
    fork = room.last.event_id
    demote = room.add(
        C,
        "m.room.power_levels",
        "",
        {"users": _users(room, {M: 0})},
        prev=[fork],
        check=True,
    )
    ban = room.add(
        M, "m.room.member", A, {"membership": "ban"}, prev=[fork], check=True
    )
    return room, fork, demote.event_id, ban.event_id, A


@pytest.mark.parametrize("version", V2_VERSIONS)
def test_ban_racing_power_level_change(version: str) -> None:
    room, _, demote, ban, target = ban_race(version)
    resolved = resolve(room, demote, ban)
    assert resolved[PL] == demote
    # The demotion sorts first (higher-powered sender) so the ban no longer passes.
    assert room.events[resolved[("m.room.member", target)]].membership == "join"
    assert resolve(room, ban, demote) == resolved


@pytest.mark.parametrize("version", V2_VERSIONS)
def test_join_rule_change_racing_joins(version: str) -> None:
    room = standard_room(version)
    fork = room.last.event_id
    to_invite = room.add(
        C, "m.room.join_rules", "", {"join_rule": "invite"}, prev=[fork], check=True
    )
    join_a = room.add(
        A, "m.room.member", A, {"membership": "join"}, prev=[fork], check=True
    )
    join_m = room.add(M, "m.room.member", M, {"membership": "join"}, check=True)
    resolved = resolve(room, to_invite.event_id, join_m.event_id)
    assert resolved[JR] == to_invite.event_id
    assert ("m.room.member", A) not in resolved
    assert ("m.room.member", M) not in resolved
    assert join_a.event_id not in resolved.values()


def _state_reset_dag(version: str) -> tuple[Room, str, str, str, str]:
    """M (PL 100) changes power levels, and leaves on a parallel branch.

    S1 (resolution of both branches) legitimately holds M's PL2 and M's
    leave. Resolving S1 against the leave branch S2: v2 re-checks PL2 against
    the unconflicted state (where M has left) and resets to PL1; v2.1 starts
    from the empty state and keeps PL2.
    """
    room = Room(version)
    room.add(C, "m.room.member", C, {"membership": "join"})
    pl1 = room.add(C, "m.room.power_levels", "", {"users": _users(room, {M: 100})})
    room.add(C, "m.room.join_rules", "", {"join_rule": "public"})
    room.add(M, "m.room.member", M, {"membership": "join"}, check=True)
    fork = room.last.event_id
    pl2 = room.add(
        M,
        "m.room.power_levels",
        "",
        {"users": _users(room, {M: 100, A: 50})},
        prev=[fork],
        check=True,
    )
    leave = room.add(
        M, "m.room.member", M, {"membership": "leave"}, prev=[fork], check=True
    )
    s1_head = merge(room, pl2.event_id, leave.event_id)
    return room, s1_head, leave.event_id, pl1.event_id, pl2.event_id


@pytest.mark.parametrize("version", ["11", "12"])
def test_state_reset_prevented_by_v2_1(version: str) -> None:
    room, s1_head, leave, pl1, pl2 = _state_reset_dag(version)
    s1 = room.state_after[s1_head]
    assert s1[PL] == pl2 and s1[("m.room.member", M)] == leave
    resolved = resolve(room, s1_head, leave)
    if room.rv.state_res.value == "v2.1":
        assert resolved[PL] == pl2
    else:
        assert resolved[PL] == pl1  # the v2 state reset
    assert resolved[("m.room.member", M)] == leave


def test_v1_resolution_prefers_auth_and_depth() -> None:
    room, fork, demote, ban, target = ban_race("1")
    resolved = resolve(room, demote, ban)
    assert resolved[PL] == demote
    # v1 only checks the membership conflict against R (with the new PL).
    assert room.events[resolved[("m.room.member", target)]].membership == "join"
    topic_a = room.add(C, "m.room.topic", "", {"topic": "a"}, prev=[fork])
    topic_b = room.add(C, "m.room.topic", "", {"topic": "b"}, prev=[topic_a.event_id])
    resolved = resolve(room, topic_a.event_id, topic_b.event_id, fork)
    assert resolved[("m.room.topic", "")] == topic_b.event_id


def test_unconflicted_only_and_missing_events() -> None:
    room = standard_room("10")
    head = room.last.event_id
    assert resolve(room, head, head) == room.state_after[head]
    assert resolve_state(room.rv, []) == {}
    race, _, demote, ban, _ = ban_race("10")
    sets = [race.state_after[demote], race.state_after[ban]]
    with pytest.raises(MissingEventError):
        resolve_state(race.rv, sets, {})


def test_get_event_callable_is_used() -> None:
    room, _, demote, ban, _ = ban_race("12")
    calls: list[str] = []

    def get_event(event_id: str):
        calls.append(event_id)
        return room.events.get(event_id)

    by_callable = resolve_state(
        room.rv, [room.state_after[demote], room.state_after[ban]], get_event=get_event
    )
    assert calls and by_callable == resolve(room, demote, ban)


# --- property: order and duplicates do not matter ----------------------------------


def _three_way(version: str) -> tuple[Room, list[str]]:
    room, fork, demote, ban, _ = ban_race(version)
    topic = room.add(M, "m.room.topic", "", {"topic": "x"}, prev=[fork])
    jr = room.add(C, "m.room.join_rules", "", {"join_rule": "invite"}, prev=[demote])
    leave = room.add(A, "m.room.member", A, {"membership": "leave"}, prev=[fork])
    return room, [jr.event_id, ban, topic.event_id, leave.event_id, fork]


_DAGS = {v: _three_way(v) for v in ("1", "2", "11", "12")}


@settings(max_examples=40, deadline=None)
@given(
    version=st.sampled_from(sorted(_DAGS)),
    data=st.data(),
)
def test_result_independent_of_order_and_duplicates(
    version: str, data: st.DataObject
) -> None:
    room, heads = _DAGS[version]
    chosen = data.draw(
        st.lists(st.sampled_from(heads), min_size=2, max_size=4, unique=True)
    )
    expected = resolve(room, *chosen)
    shuffled = data.draw(st.permutations(chosen))
    dups = data.draw(st.lists(st.sampled_from(chosen), max_size=3))
    assert resolve(room, *shuffled, *dups) == expected
