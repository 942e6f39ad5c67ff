"""Crash safety of the send path: SIGKILL the real ``sup run`` process during sends, on SQLite and PostgreSQL.

Issue #5: no event answered with 200 is lost if the process is killed right after the answer, and no
retried txn id creates a duplicate. Several senders (threads, one device each) send numbered messages, each
with its own txn id, one at a time; the test kills the server with SIGKILL at random moments, restarts it on
the same database, and every sender retries its unanswered send with the SAME txn id until it is answered.
At the end the room's timeline must hold every acknowledged event exactly once, one event per txn id, and
each sender's messages in send order.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from typing import Any, Callable

import pytest
import requests

from tests.harness import IN_CI, PostgresUnavailable, create_postgres_database
from tests.server.test_process import REPO, sup_command

V3 = "/_matrix/client/v3"
KILLS = 5
SENDERS = 4
ENGINE_BUDGET_S = 60.0   # the whole scenario per engine, start to final check
REQUEST_TIMEOUT_S = 5.0
PASSWORD = "crash-password-123"


class Proc:
    """The ``sup run`` subprocess; restartable on the same data dir / database."""

    def __init__(self, tmp_path: Any, env: dict[str, str], port: int) -> None:
        self.tmp_path, self.env, self.port = tmp_path, env, port
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None
        self.log = open(tmp_path / "sup.log", "ab")

    def start(self, deadline: float) -> None:
        self.proc = subprocess.Popen(
            sup_command() + ["run", "--data-dir", str(self.tmp_path / "data")],
            cwd=self.tmp_path, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"sup exited with {self.proc.returncode} at start: {self.tail()}")
            try:
                if requests.get(self.url + "/_matrix/client/versions", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"sup did not answer in time: {self.tail()}")
            time.sleep(0.05)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def tail(self) -> str:
        self.log.flush()
        with open(self.tmp_path / "sup.log", "rb") as f:
            return f.read()[-3000:].decode(errors="replace")


def _register_and_login(url: str, devices: int) -> list[str]:
    body: dict[str, Any] = {"username": "crash", "password": PASSWORD}
    r = requests.post(url + V3 + "/register", json=body, timeout=REQUEST_TIMEOUT_S)
    if r.status_code == 401:
        body["auth"] = {"type": "m.login.dummy", "session": r.json()["session"]}
        r = requests.post(url + V3 + "/register", json=body, timeout=REQUEST_TIMEOUT_S)
    assert r.status_code == 200, r.text
    tokens = [r.json()["access_token"]]
    for i in range(devices - 1):
        r = requests.post(url + V3 + "/login", timeout=REQUEST_TIMEOUT_S, json={
            "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "crash"}, "password": PASSWORD})
        assert r.status_code == 200, r.text
        tokens.append(r.json()["access_token"])
    return tokens


class Sender(threading.Thread):
    """Sends ``s{n}-{j}`` for j = 0, 1, ... one at a time; an unanswered send is retried with the same txn id."""

    def __init__(self, n: int, url: str, token: str, room_id: str, stop: threading.Event, deadline: float) -> None:
        super().__init__(name=f"sender-{n}", daemon=True)
        self.n, self.url, self.token, self.room_id = n, url, token, room_id
        self.stop, self.deadline = stop, deadline
        self.acked: list[tuple[str, str]] = []   # (txn id, event id), in send order
        self.retried: dict[str, tuple[float, float]] = {}  # txn id sent more than once -> (first try, answer) wall time
        self.errors: list[str] = []
        self.session = requests.Session()

    def run(self) -> None:
        j = 0
        while not self.stop.is_set() and time.monotonic() < self.deadline:
            txn = f"s{self.n}-{j}"
            event_id = self._send_until_answered(txn)
            if event_id is None:
                return  # out of time with this send unanswered: it is neither acked nor counted
            self.acked.append((txn, event_id))
            j += 1

    def _send_until_answered(self, txn: str) -> str | None:
        path = f"{self.url}{V3}/rooms/{self.room_id}/send/m.room.message/{txn}"
        attempts = 0
        first = time.time()
        while time.monotonic() < self.deadline:
            attempts += 1
            try:
                r = self.session.put(path, json={"msgtype": "m.text", "body": txn},
                                     headers={"Authorization": f"Bearer {self.token}"}, timeout=REQUEST_TIMEOUT_S)
            except requests.RequestException:
                self.session.close()
                self.session = requests.Session()
                time.sleep(0.05)  # server down (killed): retry the same txn id once it is back
                continue
            if r.status_code == 200:
                if attempts > 1:
                    self.retried[txn] = (first, time.time())
                return r.json()["event_id"]
            if r.status_code >= 500 or r.status_code == 429:
                time.sleep(0.05)  # a server dying mid-request may answer 5xx: never acked, so retry
                continue
            self.errors.append(f"{txn}: {r.status_code} {r.text[:200]}")
            return None
        return None


def _timeline(url: str, token: str, room_id: str) -> list[dict[str, Any]]:
    """Every event of the room, oldest first, through /messages forward pagination."""
    out: list[dict[str, Any]] = []
    token_from: str | None = None
    for _ in range(1000):
        q = "?dir=f&limit=500" + (f"&from={token_from}" if token_from else "")
        r = requests.get(f"{url}{V3}/rooms/{room_id}/messages{q}", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert r.status_code == 200, r.text
        body = r.json()
        out.extend(body["chunk"])
        if not body["chunk"] or not body.get("end"):
            return out
        token_from = body["end"]
    raise AssertionError("pagination did not end")


def _env(tmp_path: Any, engine: str, port: int) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": REPO,
        "SUP_LISTENERS": f"[{{port: {port}, bind_address: 127.0.0.1, resources: [client]}}]",
        "SUP_REGISTRATION__ENABLED": "true",
        "SUP_REGISTRATION__BCRYPT_ROUNDS": "4",
        "SUP_RATE_LIMITS__ENABLED": "false",
        "SUP_LOGGING__LEVEL": "WARNING",
    }
    if engine == "postgres":
        try:
            dsn, drop = create_postgres_database(migrated=True)
            drop()  # deferred: dropped at the end of the session
        except PostgresUnavailable as e:
            if IN_CI:
                pytest.fail(f"PostgreSQL is required in CI but unavailable: {e}")
            pytest.skip(f"PostgreSQL unavailable: {e}")
        env["SUP_DATABASE__ENGINE"] = "postgres"
        env["SUP_DATABASE__DSN"] = dsn
    return env


def test_sigkill_during_sends_loses_nothing_and_duplicates_nothing(tmp_path: Any, engine: str,
                                                                   held_port: Callable[[], int]) -> None:
    start = time.monotonic()
    deadline = start + ENGINE_BUDGET_S
    rng = random.Random(os.environ.get("SUP_CRASH_SEED") or None)
    port = held_port()  # killed and restarted on it several times, with senders reconnecting meanwhile
    srv = Proc(tmp_path, _env(tmp_path, engine, port), port)
    stop = threading.Event()
    senders: list[Sender] = []
    kills = 0
    kill_times: list[float] = []
    try:
        srv.start(deadline=time.monotonic() + 30)
        tokens = _register_and_login(srv.url, SENDERS)
        r = requests.post(srv.url + V3 + "/createRoom", json={"preset": "private_chat", "name": "crash"},
                          headers={"Authorization": f"Bearer {tokens[0]}"}, timeout=REQUEST_TIMEOUT_S)
        assert r.status_code == 200, r.text
        room_id = r.json()["room_id"]

        send_deadline = deadline - 10  # leave time for the last restart, the drain and the checks
        senders = [Sender(n, srv.url, tokens[n], room_id, stop, send_deadline) for n in range(SENDERS)]
        for s in senders:
            s.start()
        for _ in range(KILLS):
            # let some sends through, then kill at a random moment (mid-request most of the time)
            time.sleep(rng.uniform(0.2, 1.2))
            acked_before = sum(len(s.acked) for s in senders)
            kill_times.append(time.time())
            srv.kill()
            kills += 1
            time.sleep(rng.uniform(0.0, 0.2))  # senders hit a dead port meanwhile
            srv.start(deadline=send_deadline)
            assert acked_before > 0 or kills > 1, "no send was answered before the first kill"
        time.sleep(0.5)  # some sends after the last restart, including the retries
        stop.set()
        for s in senders:
            s.join(timeout=max(1.0, deadline - time.monotonic()))
            assert not s.is_alive(), f"{s.name} did not finish in time"

        for s in senders:
            assert not s.errors, s.errors
        events = _timeline(srv.url, tokens[0], room_id)
    finally:
        stop.set()
        srv.kill()
        srv.log.close()

    messages = [e for e in events if e["type"] == "m.room.message"]
    acked = {eid: txn for s in senders for txn, eid in s.acked}
    ids = [e["event_id"] for e in messages]
    bodies = [e["content"]["body"] for e in messages]
    lost = [eid for eid in acked if eid not in ids]
    duplicate_ids = {i for i in ids if ids.count(i) > 1}
    duplicate_bodies = {b for b in bodies if bodies.count(b) > 1}
    retried = {txn: span for s in senders for txn, span in s.retried.items()}
    # retries answered with an event created before the kill: the txn id was committed but its 200 was lost
    by_body = {e["content"]["body"]: e for e in messages}
    deduplicated = 0
    for txn, (first, answered) in retried.items():
        kill = max((k for k in kill_times if first <= k <= answered), default=None)
        if kill is not None and txn in by_body and by_body[txn]["origin_server_ts"] / 1000 < kill:
            deduplicated += 1
    print(f"\n[{engine}] kills={kills} acknowledged={len(acked)} stored={len(messages)} retried={len(retried)} "
          f"retries-answered-with-pre-kill-event={deduplicated} lost={len(lost)} duplicates={len(duplicate_bodies) + len(duplicate_ids)} "
          f"in {time.monotonic() - start:.1f}s")
    assert kills == KILLS
    assert len(acked) >= 20, "too few sends were answered to show anything"
    assert retried, "no send was ever retried: the kills never hit an in-flight request"
    assert not lost, f"{len(lost)} acknowledged events lost: {lost[:5]}"
    assert not duplicate_ids and not duplicate_bodies, f"duplicates: {sorted(duplicate_bodies)[:5]}"
    for e in messages:  # each stored message is the one its txn id's 200 answer named
        if e["content"]["body"] in acked.values():
            assert acked[e["event_id"]] == e["content"]["body"]
    # every stored message was sent by a sender (an unanswered last send may be stored: at most one per sender)
    unacked_stored = [b for b in bodies if b not in acked.values()]
    assert len(unacked_stored) <= SENDERS, unacked_stored
    for s in senders:  # per sender: send order is timeline order, no gaps
        mine = [b for b in bodies if b.startswith(f"s{s.n}-")]
        nums = [int(b.split("-")[1]) for b in mine]
        assert nums == list(range(len(nums))), f"{s.name}: out of order or missing: {nums[:50]}"
        assert [txn for txn, _ in s.acked] == mine[:len(s.acked)]
