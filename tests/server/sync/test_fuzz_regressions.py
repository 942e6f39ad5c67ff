"""Filter ids with Unicode digits (found by the spec fuzzer): a Matrix error, never a 500."""

from __future__ import annotations

from typing import Any

from tests.server.accounts.helpers import register

V3 = "/_matrix/client/v3"


def test_filter_ids_with_unicode_digits(server: Any) -> None:
    me = register(server, "fuzzsync")
    tok, user_id = me["access_token"], me["user_id"]
    r = server.get(V3 + f"/user/{user_id}/filter/\u00b3", token=tok)
    assert r.status_code == 404 and r.json()["errcode"] == "M_NOT_FOUND", r.text
    r = server.get(V3 + "/sync", token=tok, params={"filter": "\u00b3"})
    assert r.status_code == 400 and r.json()["errcode"] == "M_INVALID_PARAM", r.text


def test_presence_of_a_malformed_user_id(server: Any) -> None:
    tok = register(server, "fuzzpres")["access_token"]
    r = server.get(V3 + "/presence/not-a-user/status", token=tok)
    assert r.status_code == 400 and r.json()["errcode"] == "M_INVALID_PARAM", r.text
    r = server.get(V3 + "/presence/@ghost:test.local/status", token=tok)
    # no shared room with a user who does not exist: the same 403 as any stranger (security review #18)
    assert r.status_code == 403 and r.json()["errcode"] == "M_FORBIDDEN", r.text
