"""The HTTP layer's contract: routing errors, body limits, JSON errors, CORS, metrics, keys."""

from __future__ import annotations


import requests
from signedjson.key import decode_verify_key_bytes
from signedjson.sign import verify_signed_json
from unpaddedbase64 import decode_base64

from tests.harness import TestServer


def _err(resp: requests.Response) -> tuple[int, str]:
    body = resp.json()
    assert set(body) >= {"errcode", "error"}
    return resp.status_code, body["errcode"]


def test_versions_and_wellknown(server: TestServer) -> None:
    r = server.get("/_matrix/client/versions")
    assert r.status_code == 200
    assert isinstance(r.json()["versions"], list)
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert server.get("/.well-known/matrix/client").json()["m.homeserver"]["base_url"].startswith("http")
    assert "m.server" in server.get("/.well-known/matrix/server").json()
    assert server.get("/health").text == "OK"


def test_unknown_path_is_404_unrecognized(server: TestServer) -> None:
    assert _err(server.get("/_matrix/client/v3/does/not/exist")) == (404, "M_UNRECOGNIZED")


def test_wrong_method_is_405_unrecognized(server: TestServer) -> None:
    assert _err(server.post("/_matrix/client/versions")) == (405, "M_UNRECOGNIZED")
    assert _err(server.delete("/_matrix/key/v2/server")) == (405, "M_UNRECOGNIZED")


def test_options_preflight_gets_cors(server: TestServer) -> None:
    r = server.request("OPTIONS", "/_matrix/client/v3/login")
    assert r.status_code == 200
    assert "Authorization" in r.headers["Access-Control-Allow-Headers"]


def test_server_keys_are_self_signed(server: TestServer) -> None:
    body = server.get("/_matrix/key/v2/server").json()
    assert body["server_name"] == server.server_name
    assert body["valid_until_ts"] > 0
    assert body["old_verify_keys"] == {}
    for key_id, info in body["verify_keys"].items():
        alg, version = key_id.split(":")
        verify_key = decode_verify_key_bytes(key_id, decode_base64(info["key"]))
        verify_signed_json(body, server.server_name, verify_key)  # raises if the signature is wrong


def test_metrics_listener_counts_requests(server: TestServer) -> None:
    server.get("/_matrix/client/versions")
    text = requests.get(server.metrics_url + "/metrics", timeout=10).text
    assert 'sup_http_requests_total{method="GET",route="versions",status="200"}' in text
    assert "sup_http_request_duration_seconds_bucket" in text
    # the metrics listener serves nothing else
    assert requests.get(server.metrics_url + "/_matrix/client/versions", timeout=10).status_code == 404


def test_server_keeps_serving_after_bad_requests(server: TestServer) -> None:
    for _ in range(3):
        server.post("/_matrix/client/versions", data=b"{not json")
        server.get("/nope")
    assert server.get("/_matrix/client/versions").status_code == 200


LOGIN = "/_matrix/client/v3/login"


def test_invalid_json_is_400_not_json(server: TestServer) -> None:
    assert _err(server.post(LOGIN, data=b"{not json")) == (400, "M_NOT_JSON")
    assert _err(server.post(LOGIN, data=b"\xff\xfe")) == (400, "M_NOT_JSON")
    assert _err(server.post(LOGIN, data=b'{"a": NaN}')) == (400, "M_NOT_JSON")


def test_json_that_is_not_an_object_is_400_bad_json(server: TestServer) -> None:
    for body in (b"[]", b"42", b'"string"', b"null"):
        assert _err(server.post(LOGIN, data=body)) == (400, "M_BAD_JSON")


def test_body_over_the_limit_is_413_too_large(server: TestServer) -> None:
    limit = server.config.http.max_request_body
    big = b'{"pad": "' + b"x" * (limit + 10) + b'"}'
    assert _err(server.post(LOGIN, data=big)) == (413, "M_TOO_LARGE")
    # chunked upload without Content-Length is cut off too
    def chunks():
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536
    assert _err(server.post(LOGIN, data=chunks())) == (413, "M_TOO_LARGE")
    assert server.get("/_matrix/client/versions").status_code == 200


def test_query_string_access_token_is_refused(server: TestServer) -> None:
    r = server.get("/_matrix/client/v3/account/whoami?access_token=abc")
    assert r.status_code == 401 and r.json()["errcode"] == "M_MISSING_TOKEN"
    assert "Authorization" in r.json()["error"]


def test_unexpected_exception_is_500_with_request_id_and_no_traceback(server: TestServer) -> None:
    """A handler that blows up yields 500 M_UNKNOWN naming the request id, and the server keeps serving."""
    from tests.harness import on_reactor

    async def boom(request):  # noqa: ANN001
        raise ZeroDivisionError("secret internals")

    def install() -> None:
        for site in server.app.sites:
            site.dispatch.router.add("GET", "/_test/boom", boom, "test_boom")

    on_reactor(install)
    r = server.get("/_test/boom")
    assert r.status_code == 500
    body = r.json()
    assert body["errcode"] == "M_UNKNOWN"
    assert body["request_id"] in body["error"]
    assert "Traceback" not in r.text and "secret internals" not in r.text
    assert server.get("/_matrix/client/versions").status_code == 200


def test_federation_version(server: TestServer) -> None:
    body = server.get("/_matrix/federation/v1/version").json()
    assert body["server"]["name"] == "SUP" and body["server"]["version"]


def test_nul_characters_never_cause_a_500(server: TestServer) -> None:
    from tests.server.accounts.helpers import register

    token = register(server, "nulreporter")["access_token"]
    other = register(server, "nultarget")["user_id"]
    r = server.post(f"/_matrix/client/v3/users/{other}/report", token=token, json={"reason": "bad\u0000actor"})
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        assert r.json()["errcode"] == "M_INVALID_PARAM"
