"""Third-party identifiers (email / phone) without an identity server.

With email configured (``email.smtp_host``, ``EmailValidator``), email addresses are validated by SUP itself:
* ``requestToken`` for ``email`` mails a validation link (``homeserver/handlers/email_validation.py``) and answers
  ``{sid, submit_url}``; 400 ``M_THREEPID_IN_USE`` when adding/registering an address another account has,
  400 ``M_THREEPID_NOT_FOUND`` for a password reset to an unknown address;
* ``/account/3pid/add`` (UIA-guarded by the servlet) binds the address of a validated session;
* ``/account/3pid/delete`` removes a bound address (``id_server_unbind_result: no-support``).
Phone numbers are never validated (no SMS sending); without email configured every medium is refused as before:
400 ``M_THREEPID_MEDIUM_NOT_SUPPORTED`` (adding / registering), 400 ``M_THREEPID_NOT_FOUND`` (password resets),
403 ``M_THREEPID_AUTH_FAILED`` for any ``sid``. ``/account/3pid/bind`` always answers 400 ``M_SERVER_NOT_TRUSTED``
(no identity server is trusted). ``GET /capabilities`` says whether ``m.3pid_changes`` is enabled.
"""

from __future__ import annotations

import re
from typing import Any

from homeserver.api.errors import Codes, MatrixError
from storage.stores.threepids import ThreepidInUse

MEDIA = ("email", "msisdn")
_CLIENT_SECRET_RE = re.compile(r"^[0-9a-zA-Z.=_\-]{1,255}$")
_SID_RE = re.compile(r"^[0-9a-zA-Z.=_\-]{1,255}$")


def _missing(name: str) -> MatrixError:
    return MatrixError(400, Codes.MISSING_PARAM, f"Missing parameter {name!r}")


def _invalid(msg: str) -> MatrixError:
    return MatrixError(400, Codes.INVALID_PARAM, msg)


def _string(body: dict[str, Any], key: str, required: bool = True, max_len: int = 1024) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise _missing(key)
        return None
    if not isinstance(value, str):
        raise _invalid(f"{key!r} must be a string")
    if required and not value:
        raise _missing(key)
    if len(value) > max_len or "\x00" in value:
        raise _invalid(f"{key!r} is not valid")
    return value


def check_client_secret(body: dict[str, Any]) -> str:
    secret = _string(body, "client_secret")
    assert secret is not None
    if not _CLIENT_SECRET_RE.match(secret):
        raise _invalid("client_secret may only contain 0-9, a-z, A-Z, '.', '=', '_' and '-' (at most 255)")
    return secret


def check_send_attempt(body: dict[str, Any]) -> None:
    attempt = body.get("send_attempt")
    if attempt is None:
        raise _missing("send_attempt")
    if isinstance(attempt, bool) or not isinstance(attempt, int):
        raise _invalid("'send_attempt' must be an integer")
    if not 0 <= attempt < 2**53:
        raise _invalid("'send_attempt' must be between 0 and 2^53")


def check_next_link(body: dict[str, Any]) -> None:
    _string(body, "next_link", required=False, max_len=2048)
    _string(body, "id_server", required=False, max_len=255)
    _string(body, "id_access_token", required=False)


def validate_email_request(body: dict[str, Any]) -> tuple[str, str, int, str | None]:
    """(email, client_secret, send_attempt, next_link) of a valid request."""
    secret = check_client_secret(body)
    email = _string(body, "email", max_len=320)
    assert email is not None
    check_send_attempt(body)
    check_next_link(body)
    if "@" not in email.strip("@") or any(c.isspace() for c in email):
        raise _invalid("The email address is not valid")
    next_link = body.get("next_link")
    if next_link is not None and not (next_link.startswith("https://") or next_link.startswith("http://")):
        raise _invalid("'next_link' must be an http(s) URL")
    return email, secret, int(body["send_attempt"]), next_link


def validate_msisdn_request(body: dict[str, Any]) -> None:
    check_client_secret(body)
    country = _string(body, "country", max_len=2)
    phone = _string(body, "phone_number", max_len=64)
    assert country is not None and phone is not None
    check_send_attempt(body)
    check_next_link(body)
    if not re.match(r"^[A-Za-z]{2}$", country):
        raise _invalid("'country' must be a two-letter ISO 3166-1 alpha-2 code")
    if not re.match(r"^\+?[0-9 ().\-]{1,40}$", phone) or not any(c.isdigit() for c in phone):
        raise _invalid("The phone number is not valid")


class ThreePidHandler:
    """Email addresses through ``validator`` (None: no email configured); phone numbers always refused."""

    def __init__(self, validator: Any = None, store: Any = None, clock: Any = None) -> None:
        self.validator = validator
        self.store = store
        self.clock = clock

    @property
    def email_enabled(self) -> bool:
        return self.validator is not None

    async def request_token(self, purpose: str, medium: str, body: dict[str, Any], user_id: str | None = None) -> dict[str, Any]:
        """``purpose``: "account" (/account/3pid/*), "register" or "password"."""
        if medium == "email":
            email, secret, attempt, next_link = validate_email_request(body)
            if self.validator is not None:
                return await self.validator.request_token(purpose, email, secret, attempt, next_link, user_id)
        else:
            validate_msisdn_request(body)
        what = "email addresses" if medium == "email" else "phone numbers"
        if purpose == "password":
            raise MatrixError(400, Codes.THREEPID_NOT_FOUND, f"No account on this server has any of its {what} as a contact")
        raise MatrixError(400, Codes.THREEPID_MEDIUM_NOT_SUPPORTED, f"This server does not support {what} (no identity server or message sending)")

    def check_add(self, body: dict[str, Any]) -> None:
        """Validate an ``/account/3pid/add`` body before UIA."""
        check_client_secret(body)
        sid = _string(body, "sid")
        assert sid is not None
        if not _SID_RE.match(sid):
            raise _invalid("'sid' is not valid")
        if self.validator is None:
            raise MatrixError(403, Codes.THREEPID_AUTH_FAILED, "No validated third-party identifier session with this sid")

    async def add(self, user_id: str, body: dict[str, Any]) -> None:
        self.check_add(body)
        session = await self.validator.validated_session({"sid": body["sid"], "client_secret": body["client_secret"]}, "account")
        try:
            await self.store.bind(user_id, session.medium, session.address, session.validated_at or 0, self.clock.time_msec())
        except ThreepidInUse:
            raise MatrixError(400, Codes.THREEPID_IN_USE, "This email address is already in use") from None
        await self.validator.store.consume(session.session_id)

    async def list(self, user_id: str) -> list[dict[str, Any]]:
        return await self.store.for_user(user_id) if self.store is not None else []

    def add_legacy(self, body: dict[str, Any]) -> None:
        creds = body.get("three_pid_creds", body.get("threePidCreds"))
        if creds is None:
            raise _missing("three_pid_creds")
        if not isinstance(creds, dict):
            raise _invalid("'three_pid_creds' must be an object")
        check_client_secret(creds)
        _string(creds, "sid")
        raise MatrixError(403, Codes.THREEPID_AUTH_FAILED, "The credentials could not be verified: this server has no identity server")

    def bind(self, body: dict[str, Any]) -> None:
        check_client_secret(body)
        _string(body, "sid")
        _string(body, "id_server", max_len=255)
        _string(body, "id_access_token")
        raise MatrixError(400, Codes.SERVER_NOT_TRUSTED, "This server does not bind third-party identifiers on identity servers")

    async def delete(self, user_id: str, body: dict[str, Any], unbind_only: bool = False) -> dict[str, Any]:
        medium = _string(body, "medium")
        if medium not in MEDIA:
            raise _invalid("'medium' must be 'email' or 'msisdn'")
        address = _string(body, "address")
        _string(body, "id_server", required=False, max_len=255)
        if not unbind_only and self.store is not None and medium == "email" and address is not None:
            await self.store.unbind(user_id, medium, address.strip().lower())
        return {"id_server_unbind_result": "no-support"}
