"""Async uploads (create + PUT), waiting downloads, headers, and the frozen legacy endpoints."""

from __future__ import annotations

import threading
import time
from typing import Any

from tests.harness import TestServer, on_reactor
from tests.server.media.conftest import png_bytes, upload, user

V1 = "/_matrix/client/v1/media"


def _create(server: TestServer, token: str) -> tuple[str, dict[str, Any]]:
    r = server.post("/_matrix/media/v1/create", token=token)
    assert r.status_code == 200, r.text
    body = r.json()
    return body["content_uri"].rsplit("/", 1)[1], body


def test_async_upload_lifecycle(server: TestServer) -> None:
    """create → 504 M_NOT_YET_UPLOADED → others may not fill it (403) → owner fills it → 409 on overwrite → download."""
    alice, bob = user(server, "alice"), user(server, "bob")
    media_id, body = _create(server, alice["access_token"])
    assert body["content_uri"] == f"mxc://{server.server_name}/{media_id}"
    assert body["unused_expires_at"] > int(time.time() * 1000)

    r = server.get(f"{V1}/download/{server.server_name}/{media_id}?timeout_ms=50", token=alice["access_token"])
    assert r.status_code == 504 and r.json()["errcode"] == "M_NOT_YET_UPLOADED"
    r = server.get(f"{V1}/thumbnail/{server.server_name}/{media_id}?width=32&height=32&timeout_ms=0", token=alice["access_token"])
    assert r.status_code == 504 and r.json()["errcode"] == "M_NOT_YET_UPLOADED"

    put = f"/_matrix/media/v3/upload/{server.server_name}/{media_id}?filename=later.txt"
    r = server.put(put, token=bob["access_token"], data=b"bob", headers={"Content-Type": "text/plain"})
    assert r.status_code == 403 and r.json()["errcode"] == "M_FORBIDDEN"
    r = server.put(f"/_matrix/media/v3/upload/{server.server_name}/unknownid", token=alice["access_token"], data=b"x")
    assert r.status_code == 404 and r.json()["errcode"] == "M_NOT_FOUND"
    r = server.put(f"/_matrix/media/v3/upload/other.example/{media_id}", token=alice["access_token"], data=b"x")
    assert r.status_code == 403

    r = server.put(put, token=alice["access_token"], data=b"hello later", headers={"Content-Type": "text/plain"})
    assert r.status_code == 200 and r.json() == {}
    r = server.put(put, token=alice["access_token"], data=b"again", headers={"Content-Type": "text/plain"})
    assert r.status_code == 409 and r.json()["errcode"] == "M_CANNOT_OVERWRITE_MEDIA"

    r = server.get(f"{V1}/download/{server.server_name}/{media_id}", token=bob["access_token"])
    assert r.status_code == 200 and r.content == b"hello later"
    assert r.headers["Content-Disposition"] == 'inline; filename="later.txt"'


def test_download_waits_for_a_pending_upload(server: TestServer) -> None:
    """A download with timeout_ms answers as soon as the content arrives."""
    alice = user(server, "alice")
    token = alice["access_token"]
    media_id, _ = _create(server, token)
    result: dict[str, Any] = {}

    def fetch() -> None:
        started = time.monotonic()
        result["response"] = server.get(f"{V1}/download/{server.server_name}/{media_id}?timeout_ms=10000", token=token)
        result["seconds"] = time.monotonic() - started

    t = threading.Thread(target=fetch)
    t.start()
    time.sleep(0.3)
    r = server.put(f"/_matrix/media/v3/upload/{server.server_name}/{media_id}", token=token, data=b"arrived", headers={"Content-Type": "text/plain"})
    assert r.status_code == 200
    t.join(15)
    assert result["response"].status_code == 200 and result["response"].content == b"arrived"
    assert result["seconds"] < 5


def test_unused_ids_expire_and_pending_ids_are_limited(make_server) -> None:  # type: ignore[no-untyped-def]
    server = make_server({"media.unused_expiry": 300, "media.max_pending_uploads": 2})
    alice = user(server, "alice")
    token = alice["access_token"]
    first, _ = _create(server, token)
    _create(server, token)
    r = server.post("/_matrix/media/v1/create", token=token)
    assert r.status_code == 429 and r.json()["errcode"] == "M_LIMIT_EXCEEDED"
    time.sleep(0.4)
    r = server.put(f"/_matrix/media/v3/upload/{server.server_name}/{first}", token=token, data=b"late")
    assert r.status_code == 404 and r.json()["errcode"] == "M_NOT_FOUND"
    _create(server, token)  # expired ones no longer count
    stats = on_reactor(server.app.core.media_repository.run_cleanup)
    assert stats["reservations"] == 2
    assert server.db_query("SELECT COUNT(*) FROM local_media")[0][0] == 1


def test_download_headers(server: TestServer) -> None:
    """Inline only for safe types; attachment otherwise; CSP, CORP and nosniff on every download; filename override."""
    alice = user(server, "alice")
    token = alice["access_token"]
    html = upload(server, token, b"<script>alert(1)</script>", "text/html", "page.html")
    r = server.get(f"{V1}/download/{server.server_name}/{html}", token=token)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/html"
    assert r.headers["Content-Disposition"] == 'attachment; filename="page.html"'
    assert "sandbox" in r.headers["Content-Security-Policy"] and "default-src 'none'" in r.headers["Content-Security-Policy"]
    assert r.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert r.headers["X-Content-Type-Options"] == "nosniff"

    svg = upload(server, token, b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml")
    r = server.get(f"{V1}/download/{server.server_name}/{svg}", token=token)
    assert r.headers["Content-Disposition"] == "attachment"

    png = upload(server, token, png_bytes(8, 8), "image/png", "pic.png")
    r = server.get(f"{V1}/download/{server.server_name}/{png}/other%20name.png", token=token)
    assert r.headers["Content-Disposition"] == 'inline; filename="other name.png"'
    r = server.get(f"{V1}/download/{server.server_name}/{png}/%C3%A9t%C3%A9%22.png", token=token)
    assert r.headers["Content-Disposition"] == "inline; filename*=utf-8''%C3%A9t%C3%A9%22.png"

    bad_type = upload(server, token, b"x", "not a mime type")
    r = server.get(f"{V1}/download/{server.server_name}/{bad_type}", token=token)
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert r.headers["Content-Disposition"] == "attachment"

    r = server.get(f"{V1}/thumbnail/{server.server_name}/{png}?width=4&height=4", token=token)
    assert r.status_code == 200
    assert r.headers["Content-Disposition"].startswith("inline; filename=\"thumbnail.")
    assert r.headers["Content-Type"] in ("image/png", "image/jpeg")

    r = server.post("/_matrix/media/v3/upload?filename=a%0Ab", token=token, data=b"x")
    assert r.status_code == 400 and r.json()["errcode"] == "M_INVALID_PARAM"


def test_legacy_endpoints_are_frozen_for_new_media(make_server) -> None:  # type: ignore[no-untyped-def]
    """Media created after the freeze is not served unauthenticated; media from before it is; the switch turns them off."""
    frozen = make_server({})
    alice = user(frozen, "alice")
    media_id = upload(frozen, alice["access_token"], png_bytes(16, 16))
    r = frozen.get(f"/_matrix/media/v3/download/{frozen.server_name}/{media_id}")
    assert r.status_code == 404 and r.json()["errcode"] == "M_NOT_FOUND"
    r = frozen.get(f"/_matrix/media/v3/thumbnail/{frozen.server_name}/{media_id}?width=8&height=8")
    assert r.status_code == 404
    assert frozen.get("/_matrix/media/v3/config").json()["m.upload.size"] > 0

    old = make_server({"media.legacy_freeze_ts": 4_000_000_000_000})  # media "from before the switch"
    bob = user(old, "bob")
    media_id = upload(old, bob["access_token"], png_bytes(16, 16), filename="old.png")
    r = old.get(f"/_matrix/media/v3/download/{old.server_name}/{media_id}")
    assert r.status_code == 200 and r.headers["Content-Disposition"] == 'inline; filename="old.png"'
    assert r.headers["Content-Security-Policy"]
    r = old.get(f"/_matrix/media/v3/thumbnail/{old.server_name}/{media_id}?width=8&height=8&method=crop")
    assert r.status_code == 200

    off = make_server({"media.legacy_unauthenticated": False, "media.legacy_freeze_ts": 4_000_000_000_000})
    carol = user(off, "carol")
    media_id = upload(off, carol["access_token"], png_bytes(16, 16))
    assert off.get(f"/_matrix/media/v3/download/{off.server_name}/{media_id}").status_code == 404
    assert off.get("/_matrix/media/v3/config").status_code == 404
