"""matrix-nio end to end, TOTP over HTTP, rate limits, secrets never stored or logged in clear, bcrypt off the reactor."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pyotp
import requests

from tests.server.accounts.helpers import PASSWORD, V3, login, register, uia

TOTP = "/_matrix/client/unstable/org.sup.totp"


def test_nio_register_login_whoami_refresh_logout(server):
    import nio

    async def flow() -> None:
        client = nio.AsyncClient(server.url, "niouser")
        try:
            resp = await client.register("niouser", PASSWORD, device_name="nio test")
            assert isinstance(resp, nio.RegisterResponse), resp
            assert resp.user_id == "@niouser:test.local"
            resp = await client.login(PASSWORD, device_name="nio login")
            assert isinstance(resp, nio.LoginResponse), resp
            who = await client.whoami()
            assert isinstance(who, nio.WhoamiResponse) and who.user_id == "@niouser:test.local" and who.device_id == client.device_id
            # nio has no refresh-token support: log in with refresh_token and rotate it over raw HTTP.
            session = requests.post(server.url + V3 + "/login", json={"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "niouser"}, "password": PASSWORD, "refresh_token": True}, timeout=30).json()
            rotated = requests.post(server.url + V3 + "/refresh", json={"refresh_token": session["refresh_token"]}, timeout=30)
            assert rotated.status_code == 200
            client.access_token = rotated.json()["access_token"]
            assert isinstance(await client.whoami(), nio.WhoamiResponse)  # first use: the old refresh token is spent
            again = requests.post(server.url + V3 + "/refresh", json={"refresh_token": session["refresh_token"]}, timeout=30)
            assert again.status_code == 401 and again.json()["errcode"] == "M_UNKNOWN_TOKEN"
            who = await client.whoami()
            # the reuse above revoked that session, so the rotated token is dead too
            assert isinstance(who, nio.WhoamiError)
            resp = await client.login(PASSWORD)
            assert isinstance(resp, nio.LoginResponse)
            out = await client.logout()
            assert isinstance(out, nio.LogoutResponse), out
            assert isinstance(await client.whoami(), nio.WhoamiError)
        finally:
            await client.close()

    asyncio.run(flow())


def _totp_enable(server, token: str, user: str) -> tuple[str, list[str]]:
    r = uia(server, "POST", TOTP + "/enrol", token, {}, user)
    assert r.status_code == 200, r.text
    info = r.json()
    assert info["otpauth_uri"].startswith("otpauth://totp/")
    assert server.get(TOTP + "/status", token=token).json()["enabled"] is False
    # login still works with the password alone until confirmation
    login(server, user)
    r = server.post(TOTP + "/confirm", token=token, json={"code": "12345x"})
    assert (r.status_code, r.json()["errcode"]) == (403, "ORG_SUP_TOTP_INVALID")
    r = server.post(TOTP + "/confirm", token=token, json={})
    assert (r.status_code, r.json()["errcode"]) == (400, "M_MISSING_PARAM")
    r = server.post(TOTP + "/confirm", token=token, json={"code": pyotp.TOTP(info["secret"]).now()})
    assert r.status_code == 200, r.text
    return info["secret"], r.json()["recovery_codes"]


def _wait_next_step(secret: str, used: str) -> str:
    totp = pyotp.TOTP(secret)
    for _ in range(70):
        # codes from the previous/next step are also accepted, so any fresh code differing from `used` works
        code = totp.at(time.time() + 30)
        if code != used:
            return code
        time.sleep(0.5)
    raise AssertionError("no fresh code")


def test_totp_login_and_uia(server):
    token = register(server, "tina")["access_token"]
    secret, recovery = _totp_enable(server, token, "tina")
    assert len(recovery) == 10
    base = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "tina"}, "password": PASSWORD}
    r = server.post(V3 + "/login", json=base)
    assert (r.status_code, r.json()["errcode"]) == (401, "ORG_SUP_TOTP_REQUIRED")
    r = server.post(V3 + "/login", json={**base, "password": "wrong", "org.sup.totp_code": "000000"})
    assert (r.status_code, r.json()["errcode"]) == (403, "M_FORBIDDEN")  # password is checked first
    code = _wait_next_step(secret, pyotp.TOTP(secret).now())
    r = server.post(V3 + "/login", json={**base, "org.sup.totp_code": code})
    assert r.status_code == 200, r.text
    r = server.post(V3 + "/login", json={**base, "org.sup.totp_code": code})
    assert (r.status_code, r.json()["errcode"]) == (403, "ORG_SUP_TOTP_INVALID")  # same code twice
    r = server.post(V3 + "/login", json={**base, "org.sup.recovery_code": recovery[0]})
    assert r.status_code == 200
    r = server.post(V3 + "/login", json={**base, "org.sup.recovery_code": recovery[0]})
    assert (r.status_code, r.json()["errcode"]) == (403, "ORG_SUP_TOTP_INVALID")
    assert server.get(TOTP + "/status", token=token).json()["recovery_codes_remaining"] == 9
    # sensitive operations now need the TOTP stage after the password
    r = server.post(V3 + "/delete_devices", token=token, json={"devices": []})
    assert r.json()["flows"] == [{"stages": ["m.login.password", "org.sup.login.totp"]}]
    r = uia(server, "POST", TOTP + "/disable", token, {}, "tina", extra_stages=[{"type": "org.sup.login.totp", "code": "000001"}])
    assert r.status_code == 401 and r.json()["errcode"] == "ORG_SUP_TOTP_INVALID" and r.json()["completed"] == ["m.login.password"]
    r = uia(server, "POST", TOTP + "/disable", token, {}, "tina", extra_stages=[{"type": "org.sup.login.totp", "recovery_code": recovery[1]}])
    assert r.status_code == 200, r.text
    login(server, "tina")  # password alone again


def test_rate_limits_and_failed_logins(make_server):
    srv = make_server({"rate_limits.enabled": True, "rate_limits.login_burst": 3, "rate_limits.login_per_second": 0.01,
                       "rate_limits.register_burst": 2, "rate_limits.register_per_second": 0.01, "auth.max_failed_logins": 2})
    register(srv, "rita")  # 2 register requests (challenge + completion)
    r = srv.post(V3 + "/register", json={"username": "x"})
    assert r.status_code == 429 and r.json()["errcode"] == "M_LIMIT_EXCEEDED" and r.json()["retry_after_ms"] > 0
    assert "Retry-After" in r.headers
    bad = {"type": "m.login.password", "user": "rita", "password": "wrong"}
    assert srv.post(V3 + "/login", json=bad).status_code == 403
    assert srv.post(V3 + "/login", json=bad).status_code == 403
    # the account is now locked for a while, even with the right password (per-account counter)
    r = srv.post(V3 + "/login", json={**bad, "password": PASSWORD})
    assert r.status_code == 429 and r.json()["errcode"] == "M_LIMIT_EXCEEDED"
    # and the per-IP login bucket is empty
    r = srv.post(V3 + "/login", json={**bad, "user": "other"})
    assert r.status_code == 429


def test_secrets_never_in_clear(server, caplog):
    caplog.set_level(logging.DEBUG)
    secret_pw = "Sup3r-Secret-Passw0rd"
    out = register(server, "sam", password=secret_pw, refresh_token=True)
    session = login(server, "sam", password=secret_pw, refresh_token=True)
    lt = uia(server, "POST", "/_matrix/client/v1/login/get_token", session["access_token"], {}, "sam", password=secret_pw).json()["login_token"]
    r = uia(server, "POST", TOTP + "/enrol", session["access_token"], {}, "sam", password=secret_pw)
    recovery = server.post(TOTP + "/confirm", token=session["access_token"], json={"code": pyotp.TOTP(r.json()["secret"]).now()}).json()["recovery_codes"]
    server.post(V3 + "/login", json={"type": "m.login.password", "user": "sam", "password": "wrong-" + secret_pw})
    secrets_ = [secret_pw, out["access_token"], out["refresh_token"], session["access_token"], session["refresh_token"], lt, *recovery]
    dump = []
    for table in ("users", "access_tokens", "refresh_tokens", "login_tokens", "devices", "totp_recovery_codes", "profile_fields"):
        dump.extend(str(row) for row in server.db_query(f"SELECT * FROM {table}"))
    blob = "\n".join(dump)
    assert "$2b$" in blob  # bcrypt hashes are there
    for s in secrets_:
        assert s not in blob
        assert s not in caplog.text


def test_versions_answers_while_bcrypt_hashes(make_server):
    import math

    import bcrypt

    t0 = time.perf_counter()
    bcrypt.hashpw(b"probe", bcrypt.gensalt(8))
    per_hash_8 = max(1e-4, time.perf_counter() - t0)
    rounds = max(10, min(16, 8 + math.ceil(math.log2(1.0 / per_hash_8))))  # about one second per hash here
    srv = make_server({"registration.bcrypt_rounds": rounds})
    done: list[float] = []

    def reg(i: int) -> None:
        r = srv.post(V3 + "/register", json={"username": f"slow{i}", "password": PASSWORD, "auth": {"type": "m.login.dummy"}}, timeout=120)
        assert r.status_code == 200
        done.append(time.monotonic())

    threads = [threading.Thread(target=reg, args=(i,)) for i in range(3)]
    start = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(0.2)
    latencies = []
    for _ in range(5):
        t0 = time.monotonic()
        assert srv.get("/_matrix/client/versions").status_code == 200
        latencies.append(time.monotonic() - t0)
        time.sleep(0.05)
    in_flight = not done
    for t in threads:
        t.join()
    assert in_flight, "registrations finished too fast for the test to mean anything"
    assert max(latencies) < 0.5, latencies
    assert min(done) - start > max(latencies)
