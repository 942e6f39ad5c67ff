"""TOTP verification on a fake clock: ±1 step, single use, recovery codes, rate limit."""

from __future__ import annotations

from typing import Any

import pyotp
import pytest

from homeserver.api.errors import LimitExceeded, MatrixError
from homeserver.clock import FakeClock
from homeserver.handlers.totp import PERIOD_S, TotpManager, hash_recovery_code, matching_step


def run(coro: Any) -> Any:
    try:
        coro.send(None)
    except StopIteration as e:
        return e.value
    raise AssertionError("coroutine did not finish synchronously")


class MemoryTotpStore:
    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.codes: dict[str, dict[str, bool]] = {}

    async def get(self, user_id: str) -> dict[str, Any] | None:
        row = self.rows.get(user_id)
        if row is None:
            return None
        return {**row, "recovery_codes_remaining": sum(1 for used in self.codes.get(user_id, {}).values() if not used)}

    async def is_enabled(self, user_id: str) -> bool:
        return bool(self.rows.get(user_id, {}).get("enabled"))

    async def start_enrolment(self, user_id: str, secret: str, now_ms: int) -> bool:
        if self.rows.get(user_id, {}).get("enabled"):
            return False
        self.rows[user_id] = {"secret": secret, "enabled": False, "last_used_step": 0}
        return True

    async def use_step(self, user_id: str, step: int) -> bool:
        row = self.rows[user_id]
        if row["last_used_step"] >= step:
            return False
        row["last_used_step"] = step
        return True

    async def enable(self, user_id: str, step: int, hashes: list[str]) -> bool:
        row = self.rows[user_id]
        if row["enabled"] or row["last_used_step"] >= step:
            return False
        row.update(enabled=True, last_used_step=step)
        self.codes[user_id] = {h: False for h in hashes}
        return True

    async def use_recovery_code(self, user_id: str, code_hash: str, now_ms: int) -> bool:
        codes = self.codes.get(user_id, {})
        if code_hash not in codes or codes[code_hash]:
            return False
        codes[code_hash] = True
        return True

    async def replace_recovery_codes(self, user_id: str, hashes: list[str]) -> None:
        self.codes[user_id] = {h: False for h in hashes}

    async def delete(self, user_id: str) -> None:
        self.rows.pop(user_id, None)
        self.codes.pop(user_id, None)


USER = "@alice:test.local"


def make(clock: FakeClock, burst: int = 100) -> tuple[TotpManager, MemoryTotpStore]:
    store = MemoryTotpStore()
    return TotpManager(store, clock, "SUP test", 0.05, burst), store  # type: ignore[arg-type]


def code_at(secret: str, t: float) -> str:
    return pyotp.TOTP(secret).at(t)


def enrol(manager: TotpManager, clock: FakeClock) -> tuple[str, list[str]]:
    info = run(manager.begin_enrolment(USER))
    assert info["otpauth_uri"].startswith("otpauth://totp/") and "issuer=SUP%20test" in info["otpauth_uri"]
    secret = info["secret"]
    codes = run(manager.confirm_enrolment(USER, code_at(secret, clock.time())))
    return secret, codes


def test_enrol_requires_confirmation(fake_clock):
    manager, _ = make(fake_clock)
    info = run(manager.begin_enrolment(USER))
    assert run(manager.is_enabled(USER)) is False
    with pytest.raises(MatrixError) as e:
        run(manager.confirm_enrolment(USER, "000000" if code_at(info["secret"], fake_clock.time()) != "000000" else "111111"))
    assert e.value.errcode == "ORG_SUP_TOTP_INVALID"
    assert run(manager.is_enabled(USER)) is False
    codes = run(manager.confirm_enrolment(USER, code_at(info["secret"], fake_clock.time())))
    assert len(codes) == 10 and len(set(codes)) == 10
    assert run(manager.is_enabled(USER)) is True
    with pytest.raises(MatrixError):
        run(manager.begin_enrolment(USER))  # already enabled


def test_codes_single_use_and_window(fake_clock):
    manager, _ = make(fake_clock)
    secret, _ = enrol(manager, fake_clock)
    # the enrolment code's step is spent; move to the next step
    fake_clock.advance(PERIOD_S)
    now_code = code_at(secret, fake_clock.time())
    assert run(manager.verify(USER, now_code)) is True
    assert run(manager.verify(USER, now_code)) is False  # same code, second time
    # a code from the next step is accepted early (+1), then one from 2 steps ahead is not
    assert run(manager.verify(USER, code_at(secret, fake_clock.time() + PERIOD_S))) is True
    assert run(manager.verify(USER, code_at(secret, fake_clock.time() + 2 * PERIOD_S))) is False
    # a code from the previous step is accepted late (-1) only if not older than the last used step
    fake_clock.advance(3 * PERIOD_S)
    prev = code_at(secret, fake_clock.time() - PERIOD_S)
    assert run(manager.verify(USER, prev)) is True
    old = code_at(secret, fake_clock.time() - 2 * PERIOD_S)
    assert matching_step(secret, old, fake_clock.time(), 0) is None
    assert run(manager.verify(USER, "abc")) is False
    assert run(manager.verify(USER, None)) is False


def test_recovery_codes_once(fake_clock):
    manager, store = make(fake_clock)
    _, codes = enrol(manager, fake_clock)
    assert run(manager.verify(USER, recovery_code=codes[0])) is True
    assert run(manager.verify(USER, recovery_code=codes[0])) is False
    assert run(manager.verify(USER, recovery_code=codes[1].upper().replace("-", " "))) is True  # normalised
    assert run(manager.verify(USER, recovery_code="nope-nope-nope")) is False
    assert run(manager.status(USER))["recovery_codes_remaining"] == 8
    # stored hashed only
    assert codes[2] not in str(store.codes) and hash_recovery_code(codes[2]) in store.codes[USER]


def test_attempts_rate_limited(fake_clock):
    manager, _ = make(fake_clock, burst=3)
    enrol(manager, fake_clock)  # takes one attempt
    run(manager.verify(USER, "000000"))
    run(manager.verify(USER, "000000"))
    with pytest.raises(LimitExceeded) as e:
        run(manager.verify(USER, "000000"))
    assert e.value.extra["retry_after_ms"] > 0
    fake_clock.advance(60)
    run(manager.verify(USER, "000000"))  # refilled
