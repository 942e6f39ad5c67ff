"""Validating email addresses without an identity server (Client-Server API, "Adding Account Administrative Contact
Information" and the ``requestToken`` endpoints).

``requestToken`` creates a session (``sid``) bound to the client's ``client_secret`` and mails a link to
``/_sup/email/submit_token?sid=..&client_secret=..&token=..``; opening it (or POSTing the token to ``submit_url``)
validates the session. A repeated request with the same client secret and address and a ``send_attempt`` that is not
higher returns the same ``sid`` without mailing again. Tokens are random, stored hashed, expire after
``email.validation_token_lifetime`` and a session refuses after ``email.max_validation_attempts`` wrong tokens.
A validated session is used once: to bind the address (``/account/3pid/add``), to register
(``m.login.email.identity``) or to reset a password.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from typing import Any
from urllib.parse import urlencode

from prometheus_client import Counter

from homeserver.api.errors import Codes, MatrixError
from homeserver.email.message import InvalidAddress, canonical_address
from homeserver.email.sender import EmailError, PermanentEmailError
from storage.stores.threepids import ThreepidStore, ValidationSession

logger = logging.getLogger(__name__)

VALIDATION_MAILS = Counter("sup_email_validation_mails_total", "Address-validation mails by purpose and result.", ["purpose", "result"])
SUBMIT_PATH = "/_sup/email/submit_token"
PURPOSES = {"account": "add_threepid", "register": "registration", "password": "password_reset"}


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class EmailValidator:
    def __init__(self, clock: Any, store: ThreepidStore, mailer: Any, templates: Any, app_name: str, base_url: str,
                 lifetime_ms: int, max_attempts: int) -> None:
        self.clock = clock
        self.store = store
        self.mailer = mailer
        self.templates = templates
        self.app_name = app_name
        self.base_url = base_url.rstrip("/")
        self.lifetime_ms = lifetime_ms
        self.max_attempts = max_attempts

    @property
    def submit_url(self) -> str:
        return self.base_url + SUBMIT_PATH

    async def request_token(self, purpose: str, email: str, client_secret: str, send_attempt: int, next_link: str | None,
                            user_id: str | None = None) -> dict[str, Any]:
        """Validate the purpose's preconditions, create or reuse the session, mail the link. Returns ``{sid, submit_url}``."""
        try:
            address = canonical_address(email)
        except InvalidAddress:
            raise MatrixError(400, Codes.INVALID_PARAM, "The email address is not valid") from None
        owner = await self.store.user_for("email", address)
        if purpose in ("account", "register") and owner is not None:
            raise MatrixError(400, Codes.THREEPID_IN_USE, "This email address is already in use")
        if purpose == "password" and owner is None:
            raise MatrixError(400, Codes.THREEPID_NOT_FOUND, "No account on this server has this email address")
        now = self.clock.time_msec()
        existing = await self.store.find_session(client_secret, "email", address, purpose, now)
        if existing is not None and send_attempt <= existing.send_attempt:
            return {"sid": existing.session_id, "submit_url": self.submit_url}
        token = secrets.token_urlsafe(24)
        if existing is not None:
            sid = existing.session_id
            await self.store.update_send_attempt(sid, send_attempt, _hash(token))
        else:
            sid = secrets.token_urlsafe(18)
            await self.store.create_session(ValidationSession(sid, "email", address, client_secret, purpose, _hash(token), send_attempt,
                                                              next_link, now, now + self.lifetime_ms, None, 0, False))
        link = self.submit_url + "?" + urlencode({"sid": sid, "client_secret": client_secret, "token": token})
        kind = PURPOSES[purpose]
        ctx = {"app_name": self.app_name, "link": link, "valid_minutes": max(1, self.lifetime_ms // 60_000), "user_id": user_id or owner}
        try:
            r = self.templates.render(kind, ctx)
            await self.mailer.send(address, r.subject, r.text, r.html, max_attempts=2)  # the client is waiting
        except EmailError as e:
            await self.store.update_send_attempt(sid, -1, _hash(token))  # the same send_attempt may try again
            self._refuse(purpose, e)
        VALIDATION_MAILS.labels(purpose, "ok").inc()
        return {"sid": sid, "submit_url": self.submit_url}

    @staticmethod
    def _refuse(purpose: str, e: EmailError) -> None:
        if isinstance(e, PermanentEmailError):
            VALIDATION_MAILS.labels(purpose, "rejected").inc()
            logger.warning("validation mail (%s) refused: %s", purpose, e)
            raise MatrixError(400, Codes.THREEPID_DENIED, "The mail server refused this email address") from None
        VALIDATION_MAILS.labels(purpose, "failed").inc()
        logger.warning("validation mail (%s) not sent: %s", purpose, e)
        raise MatrixError(503, Codes.UNKNOWN, "The email could not be sent right now; try again later", headers={"Retry-After": "60"})

    async def submit_token(self, sid: str, client_secret: str, token: str) -> tuple[bool, str | None]:
        """Validate the session with the mailed token. (ok, next_link)."""
        s = await self.store.get_session(sid)
        now = self.clock.time_msec()
        if s is None or not hmac.compare_digest(s.client_secret, client_secret) or s.expires_ts <= now:
            return False, None
        if s.failed_attempts >= self.max_attempts:
            return False, None
        if not hmac.compare_digest(s.token_hash, _hash(token)):
            await self.store.record_failure(sid)
            return False, None
        await self.store.mark_validated(sid, now)
        return True, s.next_link

    async def validated_session(self, creds: Any, purpose: str) -> ValidationSession:
        """The validated, unused session named by ``{sid, client_secret}`` for ``purpose``, or 401/403 errors."""
        if not isinstance(creds, dict):
            raise MatrixError(400, Codes.MISSING_PARAM, "Missing threepid_creds")
        sid, secret = creds.get("sid"), creds.get("client_secret")
        if not isinstance(sid, str) or not isinstance(secret, str) or not sid or not secret:
            raise MatrixError(400, Codes.MISSING_PARAM, "threepid_creds needs sid and client_secret")
        s = await self.store.get_session(sid)
        if (s is None or not hmac.compare_digest(s.client_secret, secret) or s.purpose != purpose
                or s.expires_ts <= self.clock.time_msec() or s.consumed):
            raise MatrixError(401, Codes.THREEPID_AUTH_FAILED, "No validated email session with these credentials")
        if s.validated_at is None:
            raise MatrixError(401, Codes.THREEPID_AUTH_FAILED, "The email address has not been validated yet: open the link in the mail")
        return s

