"""The deployment file, job ownership between roles, and the generated route map."""

from __future__ import annotations

import pytest

from workers.deployment import DeploymentError, parse
from workers.roles import get_role

BASE = {"redis": {"host": "r", "port": 6380, "channel": "c"}, "shared_secret": "s",
        "instances": {"main": {"role": "main"}, "sync1": {"role": "sync", "listen": "127.0.0.1:8101"}}}


def test_parse_and_writers() -> None:
    dep = parse(BASE)
    assert dep.redis_host == "r" and dep.redis_port == 6380 and dep.channel == "c"
    assert dep.instance("sync1").listen == ("127.0.0.1", 8101)
    assert dep.writer_of("events") == "main" and dep.streams_written_by("sync1") == []
    assert set(dep.streams_written_by("main")) >= {"events", "typing", "presence", "receipts"}


@pytest.mark.parametrize("bad, message", [
    ({"instances": {}}, "instances"),
    ({"instances": {"a b": {"role": "main"}}}, "instance name"),
    ({"instances": {"main": {"role": "boss"}}}, "role"),
    ({"instances": {"main": {"role": "main", "listen": "nope"}}}, "listen"),
    ({"instances": {"main": {"role": "main", "colour": 1}}}, "unknown keys"),
    ({"instances": {"s": {"role": "sync"}}}, "exactly one instance with role main"),
    ({"instances": {"main": {"role": "main", "internal": "ftp://x"}}}, "internal"),
])
def test_bad_files_name_the_key(bad: dict, message: str) -> None:
    with pytest.raises(DeploymentError, match=message):
        parse(bad)


def test_jobs_move_to_a_dedicated_instance() -> None:
    from workers.core import Core

    def core_for(role: str, instances: dict) -> Core:
        core = Core.__new__(Core)
        core.__dict__.update(role=role, _area=None, role_spec=get_role(role), deployment=parse({"instances": instances}))
        return core

    alone = core_for("main", {"main": {"role": "main"}})
    assert alone.runs("pushers") and alone.runs("media_jobs")
    with_pusher = {"main": {"role": "main"}, "p": {"role": "pusher"}, "m": {"role": "media"}}
    assert not core_for("main", with_pusher).runs("pushers")
    assert not core_for("main", with_pusher).runs("media_jobs")
    assert core_for("main", with_pusher).runs("e2e_cleanup")
    assert core_for("pusher", with_pusher).runs("pushers") and not core_for("pusher", with_pusher).runs("e2e_cleanup")
    assert not core_for("sync", {"main": {"role": "main"}, "s": {"role": "sync"}}).runs("prune_txn_ids")


def test_route_map_comes_from_the_route_table() -> None:
    from workers.routes import RouteMatcher, nginx_map, route_table

    entries = route_table()
    m = RouteMatcher(entries)
    assert m.role_for("GET", "/_matrix/client/v3/sync") == "sync"
    assert m.role_for("GET", "/_matrix/client/unstable/org.sup.ws") == "sync" or not any(e.name == "websocket" for e in entries)
    assert m.role_for("PUT", "/_matrix/client/v3/rooms/!r:x/send/m.room.message/1") == "main"
    assert m.role_for("POST", "/_matrix/media/v3/upload") == "media"
    assert m.role_for("GET", "/_matrix/client/versions") == "main"
    text = nginx_map(entries)
    assert '"~^(GET|HEAD) /_matrix/client/v3/sync$" sync;' in text and "default main;" in text


def test_reader_roles_claim_only_get_routes() -> None:
    """The client worker must not receive a write that needs a stream writer: every route it claims is GET,
    except its declared ``WRITE_ROUTES`` (login, refresh, registration, TOTP enrolment: database-only writes
    whose abuse state is shared through Redis). (The sync role also takes sliding sync's POST, whose
    connection state is in the database.)"""
    from workers.roles.client import WRITE_ROUTES
    from workers.routes import route_table

    allowed = {tuple(r.split(" ", 1)) for r in WRITE_ROUTES}
    entries = route_table()
    for role in ("client",):
        claimed = [e for e in entries if e.role == role]
        assert claimed, role
        writes = [(e.method, e.name) for e in claimed if e.method != "GET"]
        assert set(writes) <= allowed, set(writes) - allowed
        assert {name for _, name in allowed} <= {name for _, name in writes}  # each declared write is routed here
    spec = get_role("client")
    names = {e.name for e in entries}
    assert {r.rpartition(" ")[2] for r in spec.routes} - names - {"health", "metrics", "versions"} == set()  # no stale route names


def test_every_job_a_role_names_is_scheduled_by_one_of_its_areas() -> None:
    """A role that takes a job from main must wire an area that schedules it; else the job runs nowhere
    (the background role once named federation_cleanup, whose scheduling lived in the federation transport
    area that role does not wire)."""
    import importlib
    import inspect

    from workers.roles import ROLE_NAMES

    for name in ROLE_NAMES:
        try:
            role = get_role(name)
        except Exception:
            continue  # a reserved name without a role file
        if "*" in role.jobs:
            continue
        sources = "".join(inspect.getsource(importlib.import_module(m)) for m in role.modules)
        for job in role.jobs:
            assert f'runs("{job}")' in sources or f'every("{job}",' in sources, \
                f"role {name} names job {job} but none of its areas schedules it"
