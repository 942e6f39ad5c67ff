"""Refresh tokens: the old one stays valid until a token issued for it is first used (issue 14 item 4).

Over real HTTP on both engines: a client whose refresh answer was lost retries with the same refresh token and
keeps its session; once the new access token or the new refresh token has been used, presenting the old refresh
token again is genuine reuse and revokes the whole session.
"""

from __future__ import annotations

from typing import Any

from tests.server.accounts.helpers import V3, login, register


def _refresh(server: Any, token: str) -> Any:
    return server.post(V3 + "/refresh", json={"refresh_token": token})


def _whoami(server: Any, token: str) -> int:
    return server.get(V3 + "/account/whoami", token=token).status_code


def test_lost_answer_retry_keeps_the_session(server: Any) -> None:
    s0 = login(server, register(server, "flaky")["user_id"], refresh_token=True)
    lost = _refresh(server, s0["refresh_token"])  # the answer is lost on the way
    assert lost.status_code == 200, lost.text
    retry = _refresh(server, s0["refresh_token"])  # the client retries with the token it still has
    assert retry.status_code == 200, retry.text
    s2 = retry.json()
    assert s2["access_token"] != lost.json()["access_token"] and s2["refresh_token"] != lost.json()["refresh_token"]
    # the pair nobody received is dropped; the retried pair works
    assert _whoami(server, lost.json()["access_token"]) == 401
    assert _refresh(server, lost.json()["refresh_token"]).status_code == 401
    assert _whoami(server, s2["access_token"]) == 200
    # the new access token was used: the old refresh token is now spent, and presenting it is reuse
    reuse = _refresh(server, s0["refresh_token"])
    assert (reuse.status_code, reuse.json()["errcode"]) == (401, "M_UNKNOWN_TOKEN")
    assert _whoami(server, s2["access_token"]) == 401  # the whole session is revoked
    assert _refresh(server, s2["refresh_token"]).status_code == 401


def test_using_the_new_refresh_token_spends_the_old_one(server: Any) -> None:
    s0 = login(server, register(server, "rotor")["user_id"], refresh_token=True)
    s1 = _refresh(server, s0["refresh_token"]).json()
    s2 = _refresh(server, s1["refresh_token"]).json()  # first use of the new refresh token
    assert "access_token" in s2
    assert _refresh(server, s0["refresh_token"]).status_code == 401  # reuse of a spent token
    assert _whoami(server, s2["access_token"]) == 401 and _refresh(server, s2["refresh_token"]).status_code == 401


def test_retries_chain_and_other_sessions_are_untouched(server: Any) -> None:
    user = register(server, "chain")["user_id"]
    other = login(server, user, refresh_token=True)
    s0 = login(server, user, refresh_token=True)
    for _ in range(3):  # several lost answers in a row
        assert _refresh(server, s0["refresh_token"]).status_code == 200
    final = _refresh(server, s0["refresh_token"]).json()
    assert _whoami(server, final["access_token"]) == 200
    nxt = _refresh(server, final["refresh_token"])
    assert nxt.status_code == 200 and _whoami(server, nxt.json()["access_token"]) == 200
    # revoking s0's session by reuse leaves the other session alone
    assert _refresh(server, s0["refresh_token"]).status_code == 401
    assert _whoami(server, nxt.json()["access_token"]) == 401
    assert _whoami(server, other["access_token"]) == 200
    assert _refresh(server, other["refresh_token"]).status_code == 200
