"""Admin API for the server: server notices, statistics, background jobs, scheduled tasks, version, and the
generated coverage table."""

from __future__ import annotations

import os

from tests.server.admin.helpers import A1, V3, admin_token, bodies, create_room, join, send, user

ALICE = "@alice:test.local"


def test_server_version(server):
    root = admin_token(server)
    r = server.get(f"{A1}/server_version", token=root)
    assert r.status_code == 200 and isinstance(r.json()["server_version"], str) and r.json()["server_version"]
    assert server.get(f"{A1}/server_version").status_code == 401


def test_server_notices(server):
    root = admin_token(server)
    alice = user(server, "alice")["access_token"]
    r = server.post(f"{A1}/send_server_notice", token=root, json={"user_id": ALICE, "content": {"msgtype": "m.text", "body": "Maintenance at 10"}})
    assert r.status_code == 200, r.text
    sync = server.get(V3 + "/sync?timeout=0", token=alice).json()
    invited = sync["rooms"]["invite"]
    assert len(invited) == 1
    room = next(iter(invited))
    join(server, alice, room)
    assert bodies(server, alice, room) == ["Maintenance at 10"]
    members = server.get(f"{A1}/rooms/{room}/members", token=root).json()["members"]
    assert sorted(members) == [ALICE, "@notices:test.local"]
    # idempotent by transaction id; the same room is reused; the recipient cannot write there
    first = server.put(f"{A1}/send_server_notice/t1", token=root, json={"user_id": ALICE, "content": {"msgtype": "m.text", "body": "two"}})
    again = server.put(f"{A1}/send_server_notice/t1", token=root, json={"user_id": ALICE, "content": {"msgtype": "m.text", "body": "two"}})
    assert first.status_code == 200 and first.json() == again.json()
    assert bodies(server, alice, room) == ["two", "Maintenance at 10"]
    r = server.put(f"{V3}/rooms/{room}/send/m.room.message/x", token=alice, json={"msgtype": "m.text", "body": "reply"})
    assert r.status_code == 403
    import time

    deadline = time.monotonic() + 10  # the tag is written by a post-commit hook, just after the join
    while "m.server_notice" not in server.get(f"{V3}/user/{ALICE}/rooms/{room}/tags", token=alice).json()["tags"]:
        assert time.monotonic() < deadline, "the notices room was never tagged"
        time.sleep(0.05)
    # errors
    assert server.post(f"{A1}/send_server_notice", token=root, json={"user_id": "@x:other.org", "content": {}}).status_code == 400
    assert server.post(f"{A1}/send_server_notice", token=root, json={"user_id": "@ghost:test.local", "content": {}}).status_code == 404
    assert server.post(f"{A1}/send_server_notice", token=root, json={"user_id": ALICE, "content": "x"}).status_code == 400
    assert server.post(f"{A1}/send_server_notice", token=alice, json={"user_id": ALICE, "content": {}}).status_code == 403


def test_statistics(server):
    root = admin_token(server)
    alice = user(server, "alice")["access_token"]
    bob = user(server, "bob")["access_token"]
    for token, data in ((alice, b"a" * 100), (alice, b"b" * 50), (bob, b"c" * 10)):
        assert server.post("/_matrix/media/v3/upload", token=token, data=data, headers={"Content-Type": "text/plain"}).status_code == 200
    stats = server.get(f"{A1}/statistics/users/media?order_by=media_length&dir=b", token=root).json()
    assert stats["total"] == 2
    assert [(u["user_id"], u["media_count"], u["media_length"]) for u in stats["users"]] == [(ALICE, 2, 150), ("@bob:test.local", 1, 10)]
    assert stats["users"][0]["displayname"] == "alice"
    page = server.get(f"{A1}/statistics/users/media?limit=1", token=root).json()
    assert len(page["users"]) == 1 and page["next_token"] == 1
    assert server.get(f"{A1}/statistics/users/media?search_term=bob", token=root).json()["total"] == 1
    assert server.get(f"{A1}/statistics/users/media?order_by=nope", token=root).status_code == 400
    assert server.get(f"{A1}/statistics/users/media?from_ts=10&until_ts=5", token=root).status_code == 400
    room = create_room(server, alice)
    send(server, alice, room, "x" * 2000)
    sizes = server.get(f"{A1}/statistics/database/rooms", token=root).json()["rooms"]
    assert sizes[0]["room_id"] == room and sizes[0]["estimated_size"] > 2000


def test_background_jobs_and_scheduled_tasks(server):
    root = admin_token(server)
    user(server, "alice")
    assert server.get(f"{A1}/background_updates/enabled", token=root).json() == {"enabled": True}
    assert server.post(f"{A1}/background_updates/enabled", token=root, json={"enabled": False}).json() == {"enabled": False}
    assert server.get(f"{A1}/background_updates/status", token=root).json() == {"enabled": False, "current_updates": {}}
    r = server.post(f"{A1}/background_updates/start_job", token=root, json={"job_name": "regenerate_directory"})
    assert r.status_code == 400  # disabled
    server.post(f"{A1}/background_updates/enabled", token=root, json={"enabled": True})
    # wipe alice's directory row behind the server's back: the job rebuilds it
    server.db_execute("DELETE FROM user_directory WHERE user_id = ?", (ALICE,))
    r = server.post(f"{A1}/background_updates/start_job", token=root, json={"job_name": "regenerate_directory"})
    assert r.status_code == 200, r.text
    import time

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        tasks = server.get(f"{A1}/scheduled_tasks?action_name=regenerate_directory", token=root).json()["scheduled_tasks"]
        if tasks and tasks[0]["status"] == "complete":
            break
        time.sleep(0.05)
    assert tasks[0]["status"] == "complete" and tasks[0]["result"]["items"] >= 2
    assert server.db_query("SELECT COUNT(*) FROM user_directory WHERE user_id = ?", (ALICE,))[0][0] == 1
    r = server.post(f"{A1}/background_updates/start_job", token=root, json={"job_name": "populate_stats_process_rooms"})
    assert r.status_code == 200
    assert server.post(f"{A1}/background_updates/start_job", token=root, json={"job_name": "nope"}).status_code == 400
    assert server.get(f"{A1}/scheduled_tasks?job_status=weird", token=root).status_code == 400


def test_coverage_table_is_generated_from_the_route_table():
    """docs/admin-api.md is the output of ``sup admin-routes --markdown`` and lists at least 80 admin routes."""
    from workers.commands.admin_routes import admin_routes, markdown

    routes = [r for r in admin_routes() if r.pattern.startswith("/_synapse/admin/")]
    assert len(routes) >= 80, len(routes)
    path = os.path.join(os.path.dirname(__file__), "..", "..", "..", "docs", "admin-api.md")
    with open(path, encoding="utf-8") as f:
        on_disk = f.read()
    assert on_disk == markdown(), "docs/admin-api.md is stale: run `python -m workers.cli admin-routes --markdown > docs/admin-api.md`"


def test_every_admin_route_refuses_non_admins(sqlite_server):
    """Each Synapse admin route (but shared-secret registration) answers 401 without a token and 403 M_FORBIDDEN
    to an ordinary user, whatever the path parameters: never a 500, never data."""
    from workers.commands.admin_routes import admin_routes

    server = sqlite_server
    alice = user(server, "alice")["access_token"]
    values = {"user_id": "@alice:test.local", "room_id": "!r:test.local", "event_id": "$e", "device_id": "D",
              "server_name": "test.local", "media_id": "m", "token": "t", "report_id": "1", "delete_id": "d",
              "purge_id": "p", "redact_id": "r", "txn_id": "1", "destination": "remote.example",
              "medium": "email", "address": "a@example.org"}
    checked = 0
    for route in admin_routes():
        if not route.pattern.startswith("/_synapse/admin/") or route.pattern == "/_synapse/admin/v1/register":
            continue
        path = route.pattern
        for key, value in values.items():
            path = path.replace("{" + key + "}", value)
        assert "{" not in path, path
        anonymous = server.request(route.method, path, json={})
        assert anonymous.status_code == 401, (route.method, path, anonymous.status_code, anonymous.text)
        r = server.request(route.method, path, token=alice, json={})
        assert (r.status_code, r.json().get("errcode")) == (403, "M_FORBIDDEN"), (route.method, path, r.status_code, r.text)
        checked += 1
    assert checked >= 80
