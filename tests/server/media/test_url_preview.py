"""URL previews against a small web server started by the test: OpenGraph, fallbacks, the
preview image in the media repo, oEmbed, caching, and every blocked case as a Matrix error."""

from __future__ import annotations

import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator
from urllib.parse import quote

import pytest
from PIL import Image

from tests.server.accounts.helpers import register

PREVIEW = "/_matrix/client/v1/media/preview_url"


def _png(w: int = 64, h: int = 48) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


class _Site(BaseHTTPRequestHandler):
    hits: dict[str, int] = {}

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, ctype: str, body: bytes, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        path = self.path.split("?", 1)[0]
        _Site.hits[path] = _Site.hits.get(path, 0) + 1
        if path == "/og":
            page = ('<html><head><meta property="og:title" content="A &amp; B">'
                    '<meta property="og:description" content="The description">'
                    '<meta property="og:image" content="/img.png"><title>ignored</title></head><body>hi</body></html>')
            self._send(200, "text/html; charset=utf-8", page.encode())
        elif path == "/plain":
            page = '<html><head><title>  Just a   title </title><meta name="description" content="From meta"></head></html>'
            self._send(200, "text/html", page.encode())
        elif path == "/img.png":
            self._send(200, "image/png", _png())
        elif path == "/big":
            self._send(200, "text/html", b"<html>" + b"x" * (2 * 1024 * 1024) + b"</html>")
        elif path == "/zip":
            self._send(200, "application/zip", b"PK\x03\x04" + b"\x00" * 100)
        elif path == "/to-blocked":
            self._send(302, "text/html", b"", {"Location": "http://169.254.169.254/latest/meta-data/"})
        elif path == "/to-og":
            self._send(302, "text/html", b"", {"Location": "/og"})
        elif path == "/missing":
            self._send(404, "text/html", b"nope")
        elif path == "/oembed":
            self._send(200, "application/json", json.dumps({"type": "video", "title": "A video", "author_name": "Someone",
                                                            "provider_name": "Tube"}).encode())
        else:
            self._send(404, "text/plain", b"")


@pytest.fixture
def site() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    _Site.hits = {}
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def preview_server(make_server: Any, site: str) -> Any:
    return make_server({
        "url_preview.enabled": True,
        "url_preview.ip_range_allowlist": ["127.0.0.1/32"],
        "url_preview.max_size": "1M",
        "url_preview.oembed_providers": [{"url_pattern": site + "/video/*", "endpoint": site + "/oembed"}],
    })


def _preview(server: Any, token: str, url: str) -> Any:
    return server.get(f"{PREVIEW}?url={quote(url, safe='')}", token=token)


def test_opengraph_page_with_image_in_media_repo_and_cache(preview_server: Any, site: str) -> None:
    token = register(preview_server, "alice")["access_token"]
    r = _preview(preview_server, token, site + "/og")
    assert r.status_code == 200, r.text
    og = r.json()
    assert og["og:title"] == "A & B" and og["og:description"] == "The description"
    assert og["og:image"].startswith("mxc://test.local/")
    assert og["og:image:type"] == "image/png" and og["og:image:width"] == 64 and og["og:image:height"] == 48
    media = og["og:image"][len("mxc://"):]
    assert preview_server.get(f"/_matrix/client/v1/media/download/{media}", token=token).status_code == 200
    thumb = preview_server.get(f"/_matrix/client/v1/media/thumbnail/{media}?width=32&height=32", token=token)
    assert thumb.status_code == 200 and thumb.headers["Content-Type"].startswith("image/")
    # Cached: the second ask does not fetch the page again (also via the legacy path).
    hits = _Site.hits["/og"]
    r2 = preview_server.get(f"/_matrix/media/v3/preview_url?url={quote(site + '/og', safe='')}&ts=1", token=token)
    assert r2.status_code == 200 and r2.json() == og and _Site.hits["/og"] == hits


def test_title_and_description_fallbacks_and_redirects(preview_server: Any, site: str) -> None:
    token = register(preview_server, "alice")["access_token"]
    og = _preview(preview_server, token, site + "/plain").json()
    assert og["og:title"] == "Just a title" and og["og:description"] == "From meta"
    og = _preview(preview_server, token, site + "/to-og").json()
    assert og["og:title"] == "A & B"


def test_oembed_provider(preview_server: Any, site: str) -> None:
    token = register(preview_server, "alice")["access_token"]
    r = _preview(preview_server, token, site + "/video/123")
    assert r.status_code == 200, r.text
    assert r.json()["og:title"] == "A video" and r.json()["og:site_name"] == "Tube"
    assert _Site.hits.get("/oembed") == 1


@pytest.mark.parametrize("path,status,errcode", [
    ("/big", 502, "M_UNKNOWN"),              # larger than url_preview.max_size
    ("/to-blocked", 403, "M_FORBIDDEN"),     # a redirect into a blocked range is re-checked
    ("/zip", 502, "M_UNKNOWN"),              # not HTML and not an image
    ("/missing", 502, "M_UNKNOWN"),          # the page answers 404
])
def test_refused_pages(preview_server: Any, site: str, path: str, status: int, errcode: str) -> None:
    token = register(preview_server, "alice")["access_token"]
    r = _preview(preview_server, token, site + path)
    assert r.status_code == status, r.text
    assert r.json()["errcode"] == errcode and r.json()["error"]


@pytest.mark.parametrize("url,status", [
    ("http://10.1.2.3/", 403),              # a private address, directly
    ("http://[::1]:1/", 403),
    ("ftp://example.org/", 400),
    ("http://user:pw@127.0.0.1/", 400),
    ("not a url", 400),
    ("http://" + "a" * 3000 + ".org/", 400),
])
def test_refused_urls(preview_server: Any, url: str, status: int) -> None:
    token = register(preview_server, "alice")["access_token"]
    r = _preview(preview_server, token, url)
    assert r.status_code == status, r.text
    assert r.json()["errcode"].startswith("M_")


def test_needs_auth_url_param_and_is_off_by_default(preview_server: Any, server: Any, site: str) -> None:
    assert preview_server.get(f"{PREVIEW}?url=http://127.0.0.1/").status_code == 401
    token = register(preview_server, "alice")["access_token"]
    r = preview_server.get(PREVIEW, token=token)
    assert r.status_code == 400 and r.json()["errcode"] == "M_MISSING_PARAM"
    t2 = register(server, "bob")["access_token"]
    assert _preview(server, t2, site + "/og").status_code == 404  # url_preview.enabled defaults to false
