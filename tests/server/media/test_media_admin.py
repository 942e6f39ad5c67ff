"""Synapse-compatible media admin API, retention and the cleanup job, and the remote-media cache interface."""

from __future__ import annotations

import os
import time

from tests.harness import TestServer, on_reactor
from tests.server.media.conftest import png_bytes, upload, user, wait_background

A = "/_synapse/admin/v1"
V1 = "/_matrix/client/v1/media"


def _files(root: str) -> int:
    return sum(len(files) for _, _, files in os.walk(root))


def test_admin_media_api(server: TestServer) -> None:
    admin, alice = user(server, "admin", admin=True), user(server, "alice")
    at, t = admin["access_token"], alice["access_token"]
    sn = server.server_name
    ids = [upload(server, t, png_bytes(10 + i, 10), "image/png", f"f{i}.png") for i in range(3)]
    wait_background(server)

    # non-admins are refused
    r = server.get(f"{A}/users/{alice['user_id']}/media", token=t)
    assert r.status_code == 403 and r.json()["errcode"] == "M_FORBIDDEN"

    r = server.get(f"{A}/users/{alice['user_id']}/media?limit=2&order_by=media_length&dir=b", token=at)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == 3 and body["next_token"] == 2 and len(body["media"]) == 2
    first = body["media"][0]
    assert set(first) >= {"media_id", "media_type", "media_length", "upload_name", "created_ts", "last_access_ts", "quarantined_by", "safe_from_quarantine"}
    assert first["media_length"] >= body["media"][1]["media_length"]
    r = server.get(f"{A}/users/{alice['user_id']}/media?from=2", token=at)
    assert len(r.json()["media"]) == 1 and "next_token" not in r.json()
    assert server.get(f"{A}/users/{alice['user_id']}/media?order_by=nope", token=at).status_code == 400

    r = server.get(f"{A}/media/{sn}/{ids[0]}", token=at)
    assert r.status_code == 200 and r.json()["media_info"]["user_id"] == alice["user_id"]

    # quarantine hides media from everyone; unquarantine brings it back; protected media cannot be quarantined
    assert server.post(f"{A}/media/quarantine/{sn}/{ids[0]}", token=at).json() == {}
    assert server.get(f"{V1}/download/{sn}/{ids[0]}", token=t).status_code == 404
    assert server.get(f"{V1}/thumbnail/{sn}/{ids[0]}?width=8&height=8", token=t).status_code == 404
    server.post(f"{A}/media/unquarantine/{sn}/{ids[0]}", token=at)
    assert server.get(f"{V1}/download/{sn}/{ids[0]}", token=t).status_code == 200
    server.post(f"{A}/media/protect/{ids[1]}", token=at)
    r = server.post(f"{A}/user/{alice['user_id']}/media/quarantine", token=at)
    assert r.json() == {"num_quarantined": 2}
    assert server.get(f"{V1}/download/{sn}/{ids[1]}", token=t).status_code == 200

    # delete one item: row, blob and thumbnails go
    before = _files(server.config.media_dir)
    r = server.delete(f"{A}/media/{sn}/{ids[2]}", token=at)
    assert r.status_code == 200 and r.json() == {"deleted_media": [ids[2]], "total": 1}
    assert server.get(f"{V1}/download/{sn}/{ids[2]}", token=t).status_code == 404
    assert _files(server.config.media_dir) < before
    assert server.delete(f"{A}/media/{sn}/{ids[2]}", token=at).status_code == 404
    assert server.delete(f"{A}/media/other.example/x", token=at).status_code == 400

    # purge by date: protected media is kept
    r = server.post(f"{A}/media/delete?before_ts={int(time.time() * 1000) + 60_000}", token=at)
    assert r.status_code == 200 and r.json()["deleted_media"] == [ids[0]]
    assert server.post(f"{A}/media/delete", token=at).status_code == 400  # before_ts is required

    r = server.delete(f"{A}/users/{alice['user_id']}/media", token=at)
    assert r.json() == {"deleted_media": [ids[1]], "total": 1}
    assert server.db_query("SELECT COUNT(*) FROM media_content")[0][0] == 0
    assert server.db_query("SELECT COUNT(*) FROM media_thumbnails")[0][0] == 0
    assert _files(server.config.media_dir) == 0

    r = server.post(f"{A}/purge_media_cache?before_ts={int(time.time() * 1000)}", token=at)
    assert r.status_code == 200 and r.json() == {"deleted": 0}


def test_retention_deletes_media_not_accessed_recently(make_server) -> None:  # type: ignore[no-untyped-def]
    """With media.retention_days, the cleanup job removes local media whose last access is older than that."""
    server = make_server({"media.retention_days": 30})
    alice = user(server, "alice")
    old = upload(server, alice["access_token"], os.urandom(100), "application/octet-stream")
    fresh = upload(server, alice["access_token"], os.urandom(100), "application/octet-stream")
    long_ago = int(time.time() * 1000) - 31 * 86_400_000
    on_reactor(server.app.db.run, "age", lambda txn: txn.execute(
        "UPDATE local_media SET created_ts = ?, last_access_ts = ? WHERE media_id = ?", (long_ago, long_ago, old)))
    stats = on_reactor(server.app.core.media_repository.run_cleanup)
    assert stats["local"] == 1
    assert [r[0] for r in server.db_query("SELECT media_id FROM local_media")] == [fresh]
    assert _files(server.config.media_dir) == 1


def test_remote_media_is_fetched_through_the_interface_and_cached(server: TestServer) -> None:
    """Remote mxc URIs go through core.media_repository.remote (federation plugs in there); results are cached
    (deduplicated with local content), and the remote cache expires through the admin purge."""
    from media_repo.remote import FetchedMedia

    calls: list[tuple[str, str]] = []

    class FakeRemote:
        async def fetch(self, server_name: str, media_id: str, max_size: int, timeout_ms: int) -> FetchedMedia:
            calls.append((server_name, media_id))
            return FetchedMedia(png_bytes(50, 40), "image/png", "remote.png")

    repo = server.app.core.media_repository
    repo.remote = FakeRemote()
    admin = user(server, "admin", admin=True)
    t = admin["access_token"]
    r = server.get(f"{V1}/download/remote.example/abc?allow_remote=false", token=t)
    assert r.status_code == 404 and calls == []
    r = server.get(f"{V1}/download/remote.example/abc", token=t)
    assert r.status_code == 200 and r.content == png_bytes(50, 40)
    assert r.headers["Content-Disposition"] == 'inline; filename="remote.png"'
    r = server.get(f"{V1}/thumbnail/remote.example/abc?width=32&height=32&method=crop", token=t)
    assert r.status_code == 200
    assert calls == [("remote.example", "abc")]  # the second request used the cache
    r = server.post(f"{A}/purge_media_cache?before_ts={int(time.time() * 1000) + 60_000}", token=t)
    assert r.json() == {"deleted": 1}
    assert server.db_query("SELECT COUNT(*) FROM media_content")[0][0] == 0
