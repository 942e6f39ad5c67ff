"""The room → event persister mapping (workers/deployment.py) and the deployment file's persister entries."""

from __future__ import annotations

import hashlib

import pytest

from workers.deployment import DeploymentError, parse, shard_index

BASE = {"shared_secret": "s", "instances": {
    "main": {"role": "main"},
    "p1": {"role": "event_persister", "internal": "http://127.0.0.1:9101"},
    "p2": {"role": "event_persister", "internal": "http://127.0.0.1:9102"},
}}


def test_shard_index_is_the_documented_function() -> None:
    for room in ("!a:x", "!b:x", "!ünïcode:x", "!" + "z" * 200 + ":x"):
        expected = int.from_bytes(hashlib.sha256(room.encode()).digest()[:8], "big") % 3
        assert shard_index(room, 3) == expected
    assert shard_index("!a:x", 1) == 0


def test_rooms_spread_over_both_persisters_and_main_writes_nothing() -> None:
    dep = parse(BASE)
    owners = {dep.persister_for(f"!room{i}:x").name for i in range(50)}
    assert owners == {"p1", "p2"}
    assert dep.event_writers() == ["p1", "p2"]
    assert "events" not in dep.streams_written_by("main")
    assert dep.streams_written_by("p1") == ["events"]
    assert dep.multi_writer_events()


def test_without_persisters_main_writes_events() -> None:
    dep = parse({"instances": {"main": {"role": "main"}}})
    assert dep.event_writers() == ["main"] and dep.persister_for("!a:x").name == "main"
    assert "events" in dep.streams_written_by("main") and not dep.multi_writer_events()


def test_shard_numbers_order_the_persisters() -> None:
    data = {"shared_secret": "s", "instances": {
        "main": {"role": "main"},
        "b": {"role": "event_persister", "internal": "http://h:1", "shard": 0},
        "a": {"role": "event_persister", "internal": "http://h:2", "shard": 1},
    }}
    assert [p.name for p in parse(data).persisters()] == ["b", "a"]


@pytest.mark.parametrize("change, message", [
    ({"p1": {"role": "event_persister"}}, "internal"),
    ({"p1": {"role": "event_persister", "internal": "http://h:1", "shard": 5}}, "shard"),
])
def test_bad_persister_entries(change: dict, message: str) -> None:
    data = {"shared_secret": "s", "instances": {**BASE["instances"], **change}}
    with pytest.raises(DeploymentError, match=message):
        parse(data)


def test_persisters_need_a_shared_secret() -> None:
    with pytest.raises(DeploymentError, match="shared_secret"):
        parse({"instances": BASE["instances"]})
