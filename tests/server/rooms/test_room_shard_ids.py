"""A persister creates rooms (and upgrade replacements) only with ids of its own shard: random ids for room
versions before 12, a rebuilt create event for version 12 (where the id is the create event's hash). Run in one
process with an ``owns`` predicate set as the room writer area sets it on an event persister (both engines)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.server.rooms.helpers import create_room, register, send
from workers.deployment import shard_index


def _own_shard(server: Any) -> Any:
    owns = lambda room_id: shard_index(room_id, 3) == 1  # noqa: E731 - one shard of three
    core = server.app.core
    core.room_creation.owns = owns
    core.room_upgrades.owns = owns
    return owns


@pytest.mark.parametrize("version", ["10", "11", "12"])
def test_created_rooms_are_in_the_shard(server: Any, version: str) -> None:
    owns = _own_shard(server)
    _, token = register(server, "alice")
    for _ in range(4):
        room = create_room(server, token, room_version=version, preset="public_chat")
        assert owns(room), room
        assert send(server, token, room, "hi").startswith("$")


def test_upgrade_replacement_is_in_the_shard(server: Any) -> None:
    owns = _own_shard(server)
    _, token = register(server, "bob")
    room = create_room(server, token, room_version="11")
    for version in ("12", "11"):
        r = server.post(f"/_matrix/client/v3/rooms/{room}/upgrade", token=token, json={"new_version": version})
        assert r.status_code == 200, r.text
        room = r.json()["replacement_room"]
        assert owns(room), room
