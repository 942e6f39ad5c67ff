"""Third-party identifiers (email / phone) on a server without an identity server or mail/SMS sending.

SUP never validates third-party identifiers, so no validation session can exist:
* ``requestToken`` endpoints validate the request, then refuse with the codes the spec
  lists for them: 400 ``M_THREEPID_MEDIUM_NOT_SUPPORTED`` (adding / registering with a
  3PID), 400 ``M_THREEPID_NOT_FOUND`` for password resets (no account has a 3PID);
* ``/account/3pid/add`` and the deprecated ``POST /account/3pid`` refuse any ``sid`` with
  403 ``M_THREEPID_AUTH_FAILED`` (there is no validated session);
* ``/account/3pid/bind`` answers 400 ``M_SERVER_NOT_TRUSTED`` (no identity server is trusted);
* ``/account/3pid/delete`` and ``/unbind`` succeed with ``no-support`` (there is nothing to remove).
``GET /capabilities`` says ``m.3pid_changes: false`` so clients do not offer these.
"""

from __future__ import annotations

import re
from typing import Any

from homeserver.api.errors import Codes, MatrixError

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


def check_next_link(body: dict[str, Any]) -> None:
    _string(body, "next_link", required=False, max_len=2048)
    _string(body, "id_server", required=False, max_len=255)
    _string(body, "id_access_token", required=False)


def validate_email_request(body: dict[str, Any]) -> None:
    check_client_secret(body)
    email = _string(body, "email", max_len=320)
    assert email is not None
    check_send_attempt(body)
    check_next_link(body)
    if "@" not in email.strip("@") or any(c.isspace() for c in email):
        raise _invalid("The email address is not valid")


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
    """No third-party identifiers: validation of the input, then the spec's refusal."""

    def request_token(self, purpose: str, medium: str, body: dict[str, Any]) -> None:
        """``purpose``: "account" (/account/3pid/*), "register" or "password"."""
        if medium == "email":
            validate_email_request(body)
        else:
            validate_msisdn_request(body)
        what = "email addresses" if medium == "email" else "phone numbers"
        if purpose == "password":
            raise MatrixError(400, Codes.THREEPID_NOT_FOUND, f"No account on this server has any of its {what} as a contact")
        raise MatrixError(400, Codes.THREEPID_MEDIUM_NOT_SUPPORTED, f"This server does not support {what} (no identity server or message sending)")

    def add(self, body: dict[str, Any]) -> None:
        check_client_secret(body)
        sid = _string(body, "sid")
        assert sid is not None
        if not _SID_RE.match(sid):
            raise _invalid("'sid' is not valid")
        raise MatrixError(403, Codes.THREEPID_AUTH_FAILED, "No validated third-party identifier session with this sid")

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

    def delete(self, body: dict[str, Any]) -> dict[str, Any]:
        medium = _string(body, "medium")
        if medium not in MEDIA:
            raise _invalid("'medium' must be 'email' or 'msisdn'")
        _string(body, "address")
        _string(body, "id_server", required=False, max_len=255)
        return {"id_server_unbind_result": "no-support"}
