"""Rate limits, failed-login and TOTP counters, UIA sessions and nonces on both shared-state backends, on a fake clock.

``memory`` is the single-process backend; ``redis`` is the workers backend on the real Redis at 127.0.0.1:6379
(a fresh key prefix per test). With Redis, several ``RedisSharedState`` objects stand for several processes:
the tests prove they share one budget (N processes never give N times the budget) and one session store.
Without Redis the redis cases skip, and fail under CI=true.
"""

from __future__ import annotations

import socket
import uuid
from typing import Any, Callable

import pytest

from homeserver.api.errors import LimitExceeded, MatrixError
from homeserver.clock import FakeClock
from homeserver.handlers.admin_users import AdminUsersHandler
from homeserver.handlers.totp import TotpManager
from homeserver.handlers.ui_auth import DUMMY, REGISTRATION_TOKEN, InteractiveAuthRequired, UserInteractiveAuth
from homeserver.ratelimit import FailedLoginCounter, RateLimiter
from homeserver.shared_state import BucketSpec, MapSpec, MemorySharedState, SharedStateUnavailable
from tests.harness import IN_CI, on_reactor
from workers.shared_state import RedisSharedState

REDIS = ("127.0.0.1", 6379)


def _redis_up() -> bool:
    try:
        with socket.create_connection(REDIS, timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(params=["memory", "redis"])
def backend(request: Any, fake_clock: FakeClock) -> Any:
    """``backend()`` -> a new "process" view of one shared state (memory: the same object every time)."""
    if request.param == "memory":
        state = MemorySharedState(fake_clock)
        yield lambda: state
        return
    if not _redis_up():
        if IN_CI:
            pytest.fail("Redis at 127.0.0.1:6379 is required in CI")
        pytest.skip("Redis is not running at 127.0.0.1:6379")
    prefix = "suptest-" + uuid.uuid4().hex[:10]
    made: list[RedisSharedState] = []

    def make() -> RedisSharedState:
        state = on_reactor(lambda: RedisSharedState(fake_clock, _reactor(), *REDIS, prefix=prefix, timeout_s=5))
        made.append(state)
        return state

    yield make
    for state in made:
        on_reactor(state.close)


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


def run(coro: Any) -> Any:
    return on_reactor(lambda: coro)


def raises(exc: type[BaseException], coro: Any) -> BaseException:
    with pytest.raises(exc) as e:
        run(coro)
    return e.value


# ---------------------------------------------------------------- rate limits
def test_bucket_burst_then_refill(backend: Callable[[], Any], fake_clock: FakeClock) -> None:
    rl = RateLimiter(fake_clock, True, {"login": BucketSpec(0.5, 3)}, backend())
    for _ in range(3):
        run(rl.check("login", "1.2.3.4"))
    e = raises(LimitExceeded, rl.check("login", "1.2.3.4"))
    assert e.status == 429 and e.to_json()["errcode"] == "M_LIMIT_EXCEEDED"  # type: ignore[attr-defined]
    assert 0 < e.extra["retry_after_ms"] <= 2000  # type: ignore[attr-defined]
    run(rl.check("login", "5.6.7.8"))  # other keys are independent
    fake_clock.advance(2)
    run(rl.check("login", "1.2.3.4"))
    raises(LimitExceeded, rl.check("login", "1.2.3.4"))


def test_disabled_and_exempt(backend: Callable[[], Any], fake_clock: FakeClock) -> None:
    off = RateLimiter(fake_clock, False, {"message": BucketSpec(1, 1)}, backend())
    for _ in range(10):
        run(off.check("message", "@a:x"))
    on = RateLimiter(fake_clock, True, {"message": BucketSpec(1, 1)}, backend())
    run(on.check("message", "@a:x"))
    for _ in range(5):
        run(on.check("message", "@a:x", exempt=True))
    raises(LimitExceeded, on.check("message", "@a:x"))


def test_n_processes_share_one_rate_limit_budget(backend: Callable[[], Any], fake_clock: FakeClock) -> None:
    """The attack: an attacker spreads login attempts over 3 processes and still gets only the one burst."""
    limiters = [RateLimiter(fake_clock, True, {"login": BucketSpec(0.1, 5)}, backend()) for _ in range(3)]
    allowed = 0
    for i in range(30):
        try:
            run(limiters[i % 3].check("login", "6.6.6.6"))
            allowed += 1
        except LimitExceeded:
            pass
    # memory: 3 independent limiters in one process are the per-process world (3 x 5); redis: one budget
    shared = getattr(limiters[0], "_shared", None) is not None
    assert allowed == (5 if shared else 15)


def test_per_user_override(backend: Callable[[], Any], fake_clock: FakeClock) -> None:
    rl = RateLimiter(fake_clock, True, {"message": BucketSpec(1, 1)}, backend())
    rl.set_override("@bot:x", BucketSpec(1, 3))
    for _ in range(3):
        run(rl.check("message", "@bot:x"))
    raises(LimitExceeded, rl.check("message", "@bot:x"))
    rl.set_override("@bot:x", None)  # unlimited
    for _ in range(10):
        run(rl.check("message", "@bot:x"))


# ---------------------------------------------------------------- failed logins
def test_failed_login_counter(backend: Callable[[], Any], fake_clock: FakeClock) -> None:
    counter = FailedLoginCounter(fake_clock, 3, window_s=60, shared=backend())
    for _ in range(3):
        run(counter.attempt("@a:x"))
    raises(LimitExceeded, counter.attempt("@a:x"))
    fake_clock.advance(20)  # one attempt refilled
    run(counter.attempt("@a:x"))
    raises(LimitExceeded, counter.attempt("@a:x"))
    run(counter.record_success("@a:x"))
    for _ in range(3):
        run(counter.attempt("@a:x"))
    run(counter.attempt("@b:x"))  # per account


def test_failed_logins_counted_on_one_process_lock_out_on_another(backend: Callable[[], Any], fake_clock: FakeClock) -> None:
    a = FailedLoginCounter(fake_clock, 4, window_s=600, shared=backend())
    b = FailedLoginCounter(fake_clock, 4, window_s=600, shared=backend())
    for _ in range(4):
        run(a.attempt("@victim:x"))
    raises(LimitExceeded, b.attempt("@victim:x"))


# ---------------------------------------------------------------- TOTP attempts
class _EnabledTotpStore:
    async def get(self, user_id: str) -> dict[str, Any]:
        return {"enabled": True, "secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "last_used_step": 0, "recovery_codes_remaining": 0}

    async def use_step(self, user_id: str, step: int) -> bool:
        return True

    async def use_recovery_code(self, user_id: str, digest: str, now_ms: int) -> bool:
        return False


def test_totp_attempts_shared_across_processes(backend: Callable[[], Any], fake_clock: FakeClock) -> None:
    """10 wrong codes in all, whichever process they reach; then 429 everywhere until the bucket refills.
    (memory: both managers use the one process's state.)"""
    managers = [TotpManager(_EnabledTotpStore(), fake_clock, "t", 0.05, 10, shared=backend()) for _ in range(2)]  # type: ignore[arg-type]
    wrong = 0
    for i in range(20):
        try:
            assert run(managers[i % 2].verify("@a:x", "000000")) is False
            wrong += 1
        except LimitExceeded:
            pass
    assert wrong == 10
    raises(LimitExceeded, managers[0].verify("@a:x", "000000"))
    fake_clock.advance(20)  # 0.05/s: one attempt back
    assert run(managers[1].verify("@a:x", "000000")) is False
    raises(LimitExceeded, managers[0].verify("@a:x", "000000"))


# ---------------------------------------------------------------- expiring entries
SPEC = MapSpec(lifetime_s=60, max_entries=5, max_per_owner=2)


def test_entries_put_get_replace_pop_expire(backend: Callable[[], Any], fake_clock: FakeClock) -> None:
    s1, s2 = backend(), backend()
    run(s1.put("ns", SPEC, "k1", {"completed": [], "n": 1}, "@a:x"))
    assert run(s2.get("ns", SPEC, "k1")) == {"completed": [], "n": 1}
    assert run(s2.replace("ns", SPEC, "k1", {"completed": ["x"], "n": 2})) is True
    assert run(s1.get("ns", SPEC, "k1")) == {"completed": ["x"], "n": 2}
    assert run(s1.pop("ns", SPEC, "k1")) == {"completed": ["x"], "n": 2}
    assert run(s2.pop("ns", SPEC, "k1")) is None  # single use: a second take gets nothing
    assert run(s2.replace("ns", SPEC, "k1", {})) is False
    run(s1.put("ns", SPEC, "k2", {"v": 1}))
    fake_clock.advance(59)
    assert run(s2.get("ns", SPEC, "k2")) == {"v": 1}
    fake_clock.advance(1)
    assert run(s2.get("ns", SPEC, "k2")) is None
    assert run(s2.pop("ns", SPEC, "k2")) is None


def test_entries_bounded_per_owner_and_in_all(backend: Callable[[], Any], fake_clock: FakeClock) -> None:
    s1, s2 = backend(), backend()
    for i in range(4):
        run((s1 if i % 2 else s2).put("ns", SPEC, f"a{i}", {"i": i}, "@a:x"))
        fake_clock.advance(0.01)
    # the owner's two newest remain
    assert [run(s1.get("ns", SPEC, f"a{i}")) is not None for i in range(4)] == [False, False, True, True]
    run(s1.put("ns", SPEC, "b0", {}, "@b:x"))  # another owner is not evicted by @a's flood
    for i in range(6):
        fake_clock.advance(0.01)
        run(s2.put("ns", SPEC, f"anon{i}", {}))
    live = [k for k in ["a2", "a3", "b0"] + [f"anon{i}" for i in range(6)] if run(s1.get("ns", SPEC, k)) is not None]
    assert len(live) <= SPEC.max_entries and "anon5" in live


# ---------------------------------------------------------------- UIA and nonces across processes
def _uia(clock: FakeClock, state: Any) -> UserInteractiveAuth:
    ui = UserInteractiveAuth(clock, "x", None, None, None, None, state)  # type: ignore[arg-type]

    async def valid(token: str) -> bool:
        return token == "good"

    async def pending(token: str) -> None:
        return None

    ui.set_registration_token_checker(valid, pending)
    return ui


def test_uia_session_started_on_one_process_completes_on_another(backend: Callable[[], Any], fake_clock: FakeClock) -> None:
    flows = [[DUMMY, REGISTRATION_TOKEN]]
    p1, p2 = _uia(fake_clock, backend()), _uia(fake_clock, backend())
    e = raises(InteractiveAuthRequired, p1.check({}, "register", flows=flows))
    sid = e.extra["session"]  # type: ignore[attr-defined]
    e = raises(InteractiveAuthRequired, p2.check({"auth": {"type": DUMMY, "session": sid}}, "register", flows=flows))
    assert e.extra["completed"] == [DUMMY]  # type: ignore[attr-defined]
    done = run(p1.check({"auth": {"type": REGISTRATION_TOKEN, "token": "good", "session": sid}}, "register", flows=flows))
    assert done["registration_token"] == "good"
    # completed sessions cannot be replayed, on either process
    for p in (p1, p2):
        e = raises(MatrixError, p.check({"auth": {"type": DUMMY, "session": sid}}, "register", flows=flows))
        assert e.status == 400  # type: ignore[attr-defined]


def test_uia_session_expires_on_the_fake_clock(backend: Callable[[], Any], fake_clock: FakeClock) -> None:
    p1, p2 = _uia(fake_clock, backend()), _uia(fake_clock, backend())
    e = raises(InteractiveAuthRequired, p1.check({}, "register", flows=[[DUMMY]]))
    fake_clock.advance(15 * 60)
    e = raises(MatrixError, p2.check({"auth": {"type": DUMMY, "session": e.extra["session"]}}, "register", flows=[[DUMMY]]))  # type: ignore[attr-defined]
    assert e.status == 400  # type: ignore[attr-defined]


def test_registration_nonce_issued_on_one_process_used_once_on_another(backend: Callable[[], Any], fake_clock: FakeClock) -> None:
    def admin(state: Any) -> AdminUsersHandler:
        return AdminUsersHandler(fake_clock, "x", "secret", *([None] * 9), shared=state)  # type: ignore[arg-type]

    a, b = admin(backend()), admin(backend())
    nonce = run(a.new_nonce())
    from homeserver.handlers.admin_users import NONCES

    assert run(b._nonces.pop("nonce", NONCES, nonce)) is not None
    assert run(a._nonces.pop("nonce", NONCES, nonce)) is None


# ---------------------------------------------------------------- Redis down: degrade as documented
@pytest.fixture
def dead_redis(fake_clock: FakeClock) -> Any:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    state = on_reactor(lambda: RedisSharedState(fake_clock, _reactor(), "127.0.0.1", port, prefix="dead", timeout_s=0.2))
    yield state
    on_reactor(state.close)


def test_redis_down_security_counters_fail_closed(dead_redis: Any, fake_clock: FakeClock) -> None:
    raises(SharedStateUnavailable, dead_redis.take("k", "x", BucketSpec(1, 1)))
    e = raises(LimitExceeded, FailedLoginCounter(fake_clock, 10, shared=dead_redis).attempt("@a:x"))
    assert e.extra["retry_after_ms"] > 0  # type: ignore[attr-defined]
    totp = TotpManager(_EnabledTotpStore(), fake_clock, "t", 0.05, 10, shared=dead_redis)  # type: ignore[arg-type]
    raises(LimitExceeded, totp.verify("@a:x", "000000"))
    raises(LimitExceeded, _uia(fake_clock, dead_redis).check({}, "register", flows=[[DUMMY]]))


def test_redis_down_rate_limits_fall_back_to_a_local_share(dead_redis: Any, fake_clock: FakeClock) -> None:
    """3 processes, burst 6: while Redis is down each process grants 6 // 3 = 2, so the deployment still grants ~6."""
    rl = RateLimiter(fake_clock, True, {"login": BucketSpec(0.3, 6)}, dead_redis, local_share=3)
    run(rl.check("login", "1.1.1.1"))
    run(rl.check("login", "1.1.1.1"))
    raises(LimitExceeded, rl.check("login", "1.1.1.1"))


def test_redis_down_costs_the_deadline_once_a_second_not_per_request(fake_clock: FakeClock) -> None:
    """While Redis does not answer, one call waits for the deadline; the next calls within retry_after_s fail at
    once without touching the connection (so a send does not pay a second for its rate limit during an outage)."""
    from twisted.internet import defer, task

    reactor = task.Clock()
    calls: list[str] = []

    class _Hung:
        def eval(self, *args: Any) -> Any:
            calls.append("eval")
            return defer.Deferred()  # never answers

    state = RedisSharedState(fake_clock, reactor, "unused", 0, timeout_s=1.0, connection=_Hung(), retry_after_s=1.0)
    d = defer.ensureDeferred(state.take("k", "x", BucketSpec(1, 1)))
    assert not d.called
    reactor.advance(1.0)  # the deadline
    failures: list[Any] = []
    d.addErrback(failures.append)
    assert failures and failures[0].check(SharedStateUnavailable) and calls == ["eval"]
    for _ in range(5):  # within retry_after_s: immediate, no Redis call
        d = defer.ensureDeferred(state.take("k", "x", BucketSpec(1, 1)))
        assert d.called
        d.addErrback(lambda f: f.trap(SharedStateUnavailable))
    assert calls == ["eval"]
    reactor.advance(1.0)
    defer.ensureDeferred(state.take("k", "x", BucketSpec(1, 1))).addErrback(lambda f: None)
    assert calls == ["eval", "eval"]  # tried again
    reactor.advance(1.0)


def test_local_share_counts_the_instances_that_serve_public_endpoints() -> None:
    """While Redis is down each serving instance takes 1/N of a budget; pushers, background workers and event
    persisters serve no public endpoint and do not dilute it."""
    from workers.deployment import parse
    from workers.wiring.accounts import _serving_instances

    dep = parse({"shared_secret": "s", "instances": {
        "main": {"role": "main", "internal": "http://127.0.0.1:9001"}, "c1": {"role": "client"}, "c2": {"role": "client"},
        "s1": {"role": "sync"}, "p1": {"role": "pusher"}, "b1": {"role": "background"},
        "e1": {"role": "event_persister", "internal": "http://127.0.0.1:9002"}}})
    assert _serving_instances(dep) == 4  # main, c1, c2, s1
