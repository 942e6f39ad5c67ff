"""TOTP two-factor authentication (RFC 6238 via pyotp) with single-use recovery codes.

See docs/two-factor.md. Codes are 6 digits over 30-second steps; a code is
accepted for the current step and one step either side, and each step's code
works once (we remember the last step used). Recovery codes are random, shown
once, stored as sha256 digests and each usable once. Every verification
attempt takes a token from a per-account bucket, so guessing is rate-limited.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

import pyotp

from homeserver.api.errors import Codes, LimitExceeded, MatrixError
from homeserver.clock import Clock
from homeserver.shared_state import BucketSpec, MemorySharedState, SharedState, SharedStateUnavailable, unavailable_error
from storage.stores.totp import TotpStore

PERIOD_S = 30
DIGITS = 6
VALID_WINDOW = 1
RECOVERY_CODE_COUNT = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def normalise_recovery_code(code: str) -> str:
    return "".join(c for c in code.lower() if c.isalnum())


def hash_recovery_code(code: str) -> str:
    return hashlib.sha256(normalise_recovery_code(code).encode("utf-8")).hexdigest()


def generate_recovery_code() -> str:
    raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(12))
    return f"{raw[0:4]}-{raw[4:8]}-{raw[8:12]}"


def matching_step(secret: str, code: str, now_s: float, last_used_step: int, window: int = VALID_WINDOW) -> int | None:
    """The time step whose code equals ``code`` (within ±window steps of now) and was not used yet."""
    if not isinstance(code, str):
        return None
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not (code.isascii() and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD_S)
    current = int(now_s // PERIOD_S)
    for step in range(current - window, current + window + 1):
        if step <= last_used_step:
            continue
        if hmac.compare_digest(totp.at(step * PERIOD_S), code):
            return step
    return None


class TotpManager:
    def __init__(self, store: TotpStore, clock: Clock, issuer: str, attempts_per_second: float, attempts_burst: int,
                 shared: SharedState | None = None) -> None:
        self._store = store
        self._clock = clock
        self._issuer = issuer
        # Attempts per account: one budget for the whole deployment when ``shared`` is (docs/security.md).
        self._attempt_spec = BucketSpec(attempts_per_second, attempts_burst)
        self._attempts: SharedState = shared if shared is not None else MemorySharedState(clock)

    async def is_enabled(self, user_id: str) -> bool:
        return await self._store.is_enabled(user_id)

    async def status(self, user_id: str) -> dict[str, Any]:
        row = await self._store.get(user_id)
        enabled = bool(row and row["enabled"])
        return {"enabled": enabled, "pending": bool(row and not row["enabled"]), "recovery_codes_remaining": row["recovery_codes_remaining"] if enabled and row else 0}

    async def begin_enrolment(self, user_id: str) -> dict[str, Any]:
        secret = pyotp.random_base32()
        if not await self._store.start_enrolment(user_id, secret, self._clock.time_msec()):
            raise MatrixError(400, Codes.INVALID_PARAM, "Two-factor authentication is already enabled; disable it first")
        uri = pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD_S).provisioning_uri(name=user_id, issuer_name=self._issuer)
        return {"secret": secret, "otpauth_uri": uri, "digits": DIGITS, "period": PERIOD_S, "algorithm": "SHA1"}

    async def confirm_enrolment(self, user_id: str, code: Any) -> list[str]:
        row = await self._store.get(user_id)
        if row is None or row["enabled"]:
            raise MatrixError(400, Codes.INVALID_PARAM, "No two-factor enrolment is pending")
        await self._take_attempt(user_id)
        step = matching_step(row["secret"], code, self._clock.time(), row["last_used_step"]) if isinstance(code, str) else None
        if step is None:
            raise MatrixError(403, Codes.TOTP_INVALID, "The two-factor code is wrong or expired")
        codes = [generate_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
        if not await self._store.enable(user_id, step, [hash_recovery_code(c) for c in codes]):
            raise MatrixError(403, Codes.TOTP_INVALID, "The two-factor code was already used")
        return codes

    async def regenerate_recovery_codes(self, user_id: str) -> list[str]:
        codes = [generate_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
        await self._store.replace_recovery_codes(user_id, [hash_recovery_code(c) for c in codes])
        return codes

    async def disable(self, user_id: str) -> None:
        await self._store.delete(user_id)

    async def _take_attempt(self, user_id: str) -> None:
        try:
            wait_ms = await self._attempts.take("totp", user_id, self._attempt_spec)
        except SharedStateUnavailable:
            raise unavailable_error() from None  # fail closed: never an unbounded guess
        if wait_ms:
            raise LimitExceeded(wait_ms, "Too many two-factor attempts; try again later")

    async def verify(self, user_id: str, code: Any = None, recovery_code: Any = None) -> bool:
        """Check a TOTP code or a recovery code (each usable once). Rate-limited per account."""
        row = await self._store.get(user_id)
        if row is None or not row["enabled"]:
            return False
        await self._take_attempt(user_id)
        if isinstance(code, str) and code:
            step = matching_step(row["secret"], code, self._clock.time(), row["last_used_step"])
            return step is not None and await self._store.use_step(user_id, step)
        if isinstance(recovery_code, str) and recovery_code:
            return await self._store.use_recovery_code(user_id, hash_recovery_code(recovery_code), self._clock.time_msec())
        return False
