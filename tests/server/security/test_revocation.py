"""Class 3: revocation is immediate everywhere — live WebSocket sync sessions close (finding 3), and a
password change drops every other session's refresh tokens (finding 14)."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any, Callable

import aiohttp
import pytest

from tests.server.accounts.helpers import shared_secret_register
from tests.server.security.helpers import V3, invite_join, login, room, send, uia_password, user

WS = "/_matrix/client/unstable/org.sup.ws"
_n = itertools.count()


def _ws_after(server: Any, token: str, revoke: Callable[[], None], leak: Callable[[], None]) -> tuple[list[str], int | None]:
    """Open a WebSocket with ``token``, wait for the first frame, run ``revoke`` then ``leak``; return the
    message bodies received after the revocation and the close code."""
    url = server.url.replace("http://", "ws://") + WS

    async def scenario() -> tuple[list[str], int | None]:
        loop = asyncio.get_running_loop()
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(url, headers={"Authorization": f"Bearer {token}"})
            first = json.loads((await asyncio.wait_for(ws.receive(), 10)).data)
            assert first["type"] == "sync"
            await loop.run_in_executor(None, revoke)
            await loop.run_in_executor(None, leak)
            got: list[str] = []
            code = None
            try:
                while True:
                    msg = await asyncio.wait_for(ws.receive(), 5)
                    if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                        code = msg.data if msg.type == aiohttp.WSMsgType.CLOSE else ws.close_code
                        break
                    frame = json.loads(msg.data)
                    if frame["type"] == "sync":
                        for r in frame["sync"].get("rooms", {}).get("join", {}).values():
                            got += [e["content"].get("body") for e in r.get("timeline", {}).get("events", [])
                                    if e["type"] == "m.room.message"]
            except asyncio.TimeoutError:
                pass
            await ws.close()
            return got, code

    return asyncio.run(scenario())


def _setup(server):
    victim_id, victim = user(server, "victim")
    friend_id, friend = user(server, "friend")
    rid = room(server, victim)
    invite_join(server, victim, rid, friend_id, friend)
    stolen = login(server, victim_id)  # the attacker's copy of a session
    return victim_id, victim, friend, rid, stolen


def _admin(server):
    return shared_secret_register(server, f"adm{next(_n)}", admin=True).json()["access_token"]


REVOCATIONS = {
    "logout": lambda s, vid, v, st: s.post(V3 + "/logout", token=st["access_token"], json={}),
    "logout_all": lambda s, vid, v, st: s.post(V3 + "/logout/all", token=v, json={}),
    "delete_device": lambda s, vid, v, st: uia_password(s, "DELETE", V3 + f"/devices/{st['device_id']}", v, vid, {}),
    "delete_devices": lambda s, vid, v, st: uia_password(s, "POST", V3 + "/delete_devices", v, vid, {"devices": [st["device_id"]]}),
    "password_change": lambda s, vid, v, st: uia_password(s, "POST", V3 + "/account/password", v, vid, {"new_password": "n3w-password!"}),
    "lock": lambda s, vid, v, st: s.put(f"/_matrix/client/v1/admin/lock/{vid}", token=_admin(s), json={"locked": True}),
    "deactivate": lambda s, vid, v, st: uia_password(s, "POST", V3 + "/account/deactivate", v, vid, {}),
    "admin_deactivate": lambda s, vid, v, st: s.post(f"/_synapse/admin/v1/deactivate/{vid}", token=_admin(s), json={}),
}


@pytest.mark.parametrize("how", list(REVOCATIONS))
def test_websocket_closed_on_revocation(server, how):
    """Finding 3 (logout, device delete, password change, lock) and variants (logout/all, delete_devices,
    deactivation by the user or an admin): the revoked WebSocket closes with 4001 and gets nothing more."""
    victim_id, victim, friend, rid, stolen = _setup(server)

    def revoke() -> None:
        r = REVOCATIONS[how](server, victim_id, victim, stolen)
        assert r.status_code == 200, (how, r.status_code, r.text)

    got, code = _ws_after(server, stolen["access_token"], revoke,
                          lambda: [send(server, friend, rid, "PRIVATE after revocation"), send(server, friend, rid, "second")])
    assert "PRIVATE after revocation" not in got and "second" not in got, (how, got)
    assert code == 4001, (how, code)


def test_websocket_of_other_device_survives_unrelated_logout(server):
    """The re-check is per token: logging out one device leaves the user's other live session streaming."""
    victim_id, victim, friend, rid, stolen = _setup(server)
    got, code = _ws_after(server, victim, lambda: server.post(V3 + "/logout", token=stolen["access_token"], json={}),
                          lambda: send(server, friend, rid, "still here"))
    assert "still here" in got and code is None


def test_password_change_drops_refresh_token_of_reused_device_id(server):
    """Finding 14: the attacker logs in with the victim's device_id and refresh_token: true; after the victim's
    password change, the attacker's refresh token must not work."""
    victim_id, victim_tok = user(server, "victim")
    victim = login(server, victim_id, refresh_token=True)
    attacker = login(server, victim_id, device_id=victim["device_id"], refresh_token=True)
    r = uia_password(server, "POST", V3 + "/account/password", victim["access_token"], victim_id, {"new_password": "n3w-password!"})
    assert r.status_code == 200, r.text
    r = server.post(V3 + "/refresh", json={"refresh_token": attacker["refresh_token"]})
    assert r.status_code == 401, r.text
    assert server.get(V3 + "/account/whoami", token=attacker["access_token"]).status_code == 401
    # the caller's own session keeps working, including its refresh token
    assert server.get(V3 + "/account/whoami", token=victim["access_token"]).status_code == 200
    r = server.post(V3 + "/refresh", json={"refresh_token": victim["refresh_token"]})
    assert r.status_code == 200, r.text


def test_variant_password_change_keep_devices_false_still_drops_other_refresh(server):
    """Variant: logout_devices=false keeps other devices' access (spec), but the caller's device id reused by
    another session still loses its refresh token."""
    victim_id, _ = user(server, "victim")
    victim = login(server, victim_id, refresh_token=True)
    attacker = login(server, victim_id, device_id=victim["device_id"], refresh_token=True)
    r = uia_password(server, "POST", V3 + "/account/password", victim["access_token"], victim_id,
                     {"new_password": "n3w-password!", "logout_devices": True})
    assert r.status_code == 200
    assert server.post(V3 + "/refresh", json={"refresh_token": attacker["refresh_token"]}).status_code == 401


def test_variant_websocket_closed_when_access_token_expires(make_server):
    """Variant: a refreshable access token that expires (no revocation event at all) stops the stream."""
    server = make_server({"auth.access_token_lifetime": "2s"})
    server.app.core.sync_websocket.recheck_interval_s = 0.5
    victim_id, victim = user(server, "victim")
    friend_id, friend = user(server, "friend")
    rid = room(server, victim)
    invite_join(server, victim, rid, friend_id, friend)
    session = login(server, victim_id, refresh_token=True)
    import time as _time

    got, code = _ws_after(server, session["access_token"], lambda: _time.sleep(2.5),
                          lambda: [send(server, friend, rid, "after expiry")])
    assert "after expiry" not in got and code == 4001, (got, code)
