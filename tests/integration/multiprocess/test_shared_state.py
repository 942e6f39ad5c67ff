"""Abuse state is one budget per deployment (issue 18 item 4): main and a client worker, real PostgreSQL and Redis.

Each request below goes to one process directly (no router), alternating between them as an attacker would.
With per-process memory every budget here would be twice as large and a UIA session or nonce fetched from
one process would be unknown on the other; these assertions fail in that world.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pyotp
import requests

from tests.integration.multiprocess.cluster import SERVER_NAME, SHARED_SECRET

V3 = "/_matrix/client/v3"
TOTP = "/_matrix/client/unstable/org.sup.totp"

OVERRIDES = {
    "rate_limits.enabled": True,
    "rate_limits.login_burst": 12, "rate_limits.login_per_second": 0.001,
    "rate_limits.register_burst": 50, "rate_limits.register_per_second": 1.0,
    "auth.max_failed_logins": 4,
    "auth.totp_attempts_burst": 3, "auth.totp_attempts_per_second": 0.001,
}


def _post(base: str, path: str, body: Any, token: str | None = None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.post(base + path, json=body, headers=headers, timeout=30)


def _register(base: str, name: str) -> str:
    r = _post(base, V3 + "/register", {"username": name, "password": "pw-" + name, "auth": {"type": "m.login.dummy"}})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def _sync(base: str, token: str, since: str | None, timeout_ms: int) -> Any:
    params: dict[str, Any] = {"timeout": timeout_ms}
    if since is not None:
        params["since"] = since
    r = requests.get(base + V3 + "/sync", params=params, headers={"Authorization": f"Bearer {token}"}, timeout=timeout_ms / 1000 + 30)
    assert r.status_code == 200, r.text
    return r.json()


def _login(base: str, name: str, password: str, **extra: Any) -> requests.Response:
    body = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": name}, "password": password, **extra}
    return _post(base, V3 + "/login", body)


def test_abuse_state_is_shared_between_main_and_a_client_worker(make_cluster: Any) -> None:
    cluster, _router = make_cluster({"main": "main", "client1": "client"}, OVERRIDES)
    main, client = cluster.url("main"), cluster.url("client1")
    procs = [main, client]
    bob = _register(main, "bob")
    carol = _register(client, "carol")  # registration (and its login) served by the client worker
    _register(main, "dave")

    # 0. A login on the client worker creates a device; the device-list writer (main) records the change,
    # so bob, who shares a room with carol, sees it in his /sync from main.
    room = _post(main, V3 + "/createRoom", {"preset": "public_chat"}, bob).json()["room_id"]
    assert _post(main, V3 + f"/join/{room}", {}, carol).status_code == 200
    since = _sync(main, bob, None, 0)["next_batch"]
    assert _login(client, "carol", "pw-carol").status_code == 200
    logins = 1  # requests to /login so far (the per-IP "login" budget is 12 for the whole deployment)
    changed: list[str] = []
    for _ in range(10):  # bounded: each long-poll returns as soon as something arrives
        body = _sync(main, bob, since, 5000)
        since = body["next_batch"]
        changed += body.get("device_lists", {}).get("changed", [])
        if any(u.startswith("@carol:") for u in changed):
            break
    assert any(u.startswith("@carol:") for u in changed), changed

    # 1. Failed logins: four wrong passwords on main lock bob out on the client worker too.
    for _ in range(4):
        assert _login(main, "bob", "wrong").status_code == 403
    r = _login(client, "bob", "pw-bob")
    assert r.status_code == 429 and "failed login" in r.json()["error"], r.text
    logins += 5

    # 2. A UIA session started on main completes on the client worker (TOTP enrolment, password stage).
    r = _post(main, TOTP + "/enrol", {}, carol)
    assert r.status_code == 401 and r.json()["session"], r.text
    auth = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "carol"}, "password": "pw-carol",
            "session": r.json()["session"]}
    r = _post(client, TOTP + "/enrol", {"auth": auth}, carol)
    assert r.status_code == 200, r.text
    secret = r.json()["secret"]
    r = _post(main, TOTP + "/confirm", {"code": pyotp.TOTP(secret).now()}, carol)  # one of carol's 3 TOTP attempts
    assert r.status_code == 200, r.text

    # 3. TOTP attempts: one wrong code on each process; the third attempt (even with the right code) is refused.
    for base in procs:
        r = _login(base, "carol", "pw-carol", **{"org.sup.totp_code": "000000"})
        assert r.status_code == 403, r.text
    r = _login(main, "carol", "pw-carol", **{"org.sup.totp_code": pyotp.TOTP(secret).now()})
    assert r.status_code == 429 and "two-factor" in r.json()["error"], r.text
    logins += 3

    # 4. The per-IP login rate limit: whatever process the attacker picks, 12 logins in all.
    accepted = 0
    for i in range(12):
        r = _login(procs[i % 2], "dave", "pw-dave")
        if r.status_code == 200:
            accepted += 1
        else:
            assert r.status_code == 429 and "retry_after_ms" in r.json(), r.text
    assert accepted == 12 - logins, (accepted, logins)
    for base in procs:
        assert _login(base, "dave", "pw-dave").status_code == 429

    # 5. Registration's UIA: started on the client worker, completed on main.
    r = _post(client, V3 + "/register", {"username": "erin", "password": "pw-erin"})
    assert r.status_code == 401, r.text
    session = r.json()["session"]
    r = _post(main, V3 + "/register", {"username": "erin", "password": "pw-erin", "auth": {"type": "m.login.dummy", "session": session}})
    assert r.status_code == 200 and r.json()["user_id"].startswith("@erin:"), r.text

    # 6. A shared-secret registration nonce from one process works once, on the other.
    nonce = requests.get(client + "/_synapse/admin/v1/register", timeout=30).json()["nonce"]

    def mac(user: str, password: str) -> str:
        msg = b"\x00".join([nonce.encode(), user.encode(), password.encode(), b"notadmin"])
        return hmac.new(SHARED_SECRET.encode(), msg, hashlib.sha1).hexdigest()

    body = {"nonce": nonce, "username": "frank", "password": "pw-frank", "mac": mac("frank", "pw-frank"), "admin": False}
    r = _post(main, "/_synapse/admin/v1/register", body)
    assert r.status_code == 200, r.text
    body = {**body, "username": "grace", "mac": mac("grace", "pw-frank")}
    r = _post(client, "/_synapse/admin/v1/register", body)
    assert r.status_code == 400 and "nonce" in r.json()["error"], r.text


def test_users_of_a_killed_sync_worker_go_offline_on_main(make_cluster: Any) -> None:
    """A sync worker dies (SIGKILL) while its user long-polls: main stops hearing its heartbeat, ends the sync
    after the lease (ORIGIN_LEASE_MS) and the user goes offline OFFLINE_TIMEOUT_MS later (bounded wait),
    instead of staying online until main restarts."""
    import os
    import signal
    import threading
    import time

    from homeserver.handlers.presence import CHECK_INTERVAL_S, OFFLINE_TIMEOUT_MS, ORIGIN_LEASE_MS

    cluster, _router = make_cluster({"main": "main", "sync1": "sync"})
    main, sync1 = cluster.url("main"), cluster.url("sync1")
    token = _register(main, "heidi")
    headers = {"Authorization": f"Bearer {token}"}
    user = "@heidi:" + SERVER_NAME

    def status() -> str:
        r = requests.get(main + V3 + f"/presence/{user}/status", headers=headers, timeout=30)
        assert r.status_code == 200, r.text
        return str(r.json()["presence"])

    def sync(params: dict[str, Any]) -> Any:
        r = requests.get(sync1 + V3 + "/sync", params=params, headers=headers, timeout=90)
        assert r.status_code == 200, r.text
        return r.json()

    sync({"timeout": 0, "set_presence": "online"})
    deadline = time.monotonic() + 20
    while status() != "online":
        assert time.monotonic() < deadline, "a sync on sync1 never made heidi online on main"
        time.sleep(0.2)
    # settle: sync until a long-poll times out with nothing new (sync1 has caught up with her presence change)
    since = sync({"timeout": 0, "set_presence": "online"})["next_batch"]
    for _ in range(10):
        body = sync({"since": since, "timeout": 3000, "set_presence": "online"})
        if body["next_batch"] == since:
            break
        since = body["next_batch"]

    def hold() -> None:  # long-polls running on sync1 when it is killed (nothing new: each stays held)
        nonlocal since
        try:
            while True:
                since = sync({"since": since, "timeout": 60000, "set_presence": "online"})["next_batch"]
        except (requests.RequestException, AssertionError):
            pass

    poller = threading.Thread(target=hold, daemon=True)
    poller.start()
    time.sleep(1)  # let the "syncing" report reach main (it is flushed within 10 ms)
    cluster.stop("sync1", signal.SIGKILL)
    poller.join(30)
    bound = (ORIGIN_LEASE_MS + OFFLINE_TIMEOUT_MS) / 1000 + 4 * CHECK_INTERVAL_S + 30
    deadline = time.monotonic() + bound
    killed = time.monotonic()
    while status() != "offline":
        assert time.monotonic() < deadline, f"heidi still {status()} on main {bound:.0f} s after sync1 died"
        time.sleep(1)
    print(f"offline {time.monotonic() - killed:.1f} s after the kill")
    with open(os.path.join(cluster.tmp, "main.log"), encoding="utf-8", errors="replace") as f:
        assert "no heartbeat from sync1" in f.read()  # the lease ended the running sync, not a sync end



def test_redis_down_logins_fail_closed_sends_fall_back_then_recover(make_cluster: Any) -> None:
    """Redis is killed: a login on either process is refused with 429 (the failed-login budget cannot be
    read, so no guess is checked), while a send, whose plain rate limit falls back to a local share, still
    works. Redis comes back (same port): logins work again within a bounded wait."""
    import time

    cluster, _router = make_cluster({"main": "main", "client1": "client"}, OVERRIDES)
    main, client = cluster.url("main"), cluster.url("client1")
    token = _register(main, "ivan")
    room = _post(main, V3 + "/createRoom", {"preset": "private_chat"}, token).json()["room_id"]
    cluster.redis.kill()
    for base in (main, client):
        r = _login(base, "ivan", "pw-ivan")
        assert r.status_code == 429 and r.json()["retry_after_ms"] > 0 and "Temporarily" in r.json()["error"], r.text
    r = requests.put(main + V3 + f"/rooms/{room}/send/m.room.message/t1", json={"msgtype": "m.text", "body": "hi"},
                     headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert r.status_code == 200, r.text
    cluster.redis.start()
    deadline = time.monotonic() + 60
    for base in (client, main):
        while (r := _login(base, "ivan", "pw-ivan")).status_code != 200:
            assert r.status_code == 429 and time.monotonic() < deadline, r.text
            time.sleep(0.5)
