"""Bodies of the third-party identifier endpoints: ``requestToken`` (email, msisdn), ``/account/3pid`` (legacy),
``/account/3pid/add``, ``/bind``, ``/delete``, ``/unbind``. What SUP then does with them (no identity server, email
validated by SUP itself) is ``homeserver/handlers/threepid.py``'s."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator

from homeserver.api.models import Body, matrix_error, one_of

MEDIA = ("email", "msisdn")
_SECRET_RE = re.compile(r"^[0-9a-zA-Z.=_\-]{1,255}$")
_COUNTRY_RE = re.compile(r"^[A-Za-z]{2}$")
_PHONE_RE = re.compile(r"^\+?[0-9 ().\-]{1,40}$")


def _present(v: Any) -> Any:
    """An empty string counts as missing (as an absent parameter would)."""
    if v == "":
        raise matrix_error("M_MISSING_PARAM", "A required parameter is empty")
    return v


def _clean(max_len: int) -> Any:
    def check(v: str) -> str:
        if len(v) > max_len or "\x00" in v:
            raise matrix_error("M_INVALID_PARAM", "The parameter is too long or contains NUL")
        return v
    return AfterValidator(check)


def _secret(v: str) -> str:
    if not _SECRET_RE.match(v):
        raise matrix_error("M_INVALID_PARAM", "client_secret may only contain 0-9, a-z, A-Z, '.', '=', '_' and '-' (at most 255)")
    return v


ClientSecret = Annotated[str, BeforeValidator(_present), AfterValidator(_secret)]
Sid = Annotated[str, BeforeValidator(_present), AfterValidator(_secret)]  # same alphabet and length as client_secret
Required = Annotated[str, BeforeValidator(_present), _clean(1024)]
IdServer = Annotated[str, _clean(255)]
Optional1024 = Annotated[str, _clean(1024)]


class TokenRequestBase(Body):
    client_secret: ClientSecret
    send_attempt: Annotated[int, Field(ge=0, lt=2**53)]
    next_link: Annotated[str, _clean(2048)] | None = None
    id_server: IdServer | None = None
    id_access_token: Optional1024 | None = None

    @field_validator("next_link")
    @classmethod
    def _link(cls, v: str | None) -> str | None:
        if v is not None and not (v.startswith("https://") or v.startswith("http://")):
            raise matrix_error("M_INVALID_PARAM", "'next_link' must be an http(s) URL")
        return v


class EmailTokenRequest(TokenRequestBase):
    """``POST /{register|account/3pid|account/password}/email/requestToken``."""

    email: Annotated[str, BeforeValidator(_present), _clean(320)]

    @field_validator("email")
    @classmethod
    def _email(cls, v: str) -> str:
        if "@" not in v.strip("@") or any(c.isspace() for c in v):
            raise matrix_error("M_INVALID_PARAM", "The email address is not valid")
        return v


class MsisdnTokenRequest(TokenRequestBase):
    """``POST /{register|account/3pid|account/password}/msisdn/requestToken`` (always refused: no SMS sending)."""

    country: Annotated[str, BeforeValidator(_present)]
    phone_number: Annotated[str, BeforeValidator(_present), _clean(64)]

    @field_validator("country")
    @classmethod
    def _country(cls, v: str) -> str:
        if not _COUNTRY_RE.match(v):
            raise matrix_error("M_INVALID_PARAM", "'country' must be a two-letter ISO 3166-1 alpha-2 code")
        return v

    @field_validator("phone_number")
    @classmethod
    def _phone(cls, v: str) -> str:
        if not _PHONE_RE.match(v) or not any(c.isdigit() for c in v):
            raise matrix_error("M_INVALID_PARAM", "The phone number is not valid")
        return v


class SessionCreds(Body):
    """A validation session: ``sid`` and ``client_secret``."""

    client_secret: ClientSecret
    sid: Sid


class ThreePidAddBody(SessionCreds):
    """``POST /account/3pid/add`` (UIA-guarded: ``auth`` goes to user-interactive auth as sent)."""

    auth: dict[str, Any] | None = None

    def uia_body(self) -> dict[str, Any]:
        return {} if self.auth is None else {"auth": self.auth}


class LegacyCreds(Body):
    client_secret: ClientSecret
    sid: Required


class ThreePidLegacyBody(Body):
    """``POST /account/3pid`` (deprecated): ``three_pid_creds`` (or the older ``threePidCreds``)."""

    three_pid_creds: LegacyCreds | None = None
    threePidCreds: LegacyCreds | None = None  # noqa: N815 (the spec's old name)

    @model_validator(mode="after")
    def _one(self) -> ThreePidLegacyBody:
        if self.three_pid_creds is None and self.threePidCreds is None:
            raise matrix_error("M_MISSING_PARAM", "Missing parameter 'three_pid_creds'")
        return self


class ThreePidBindBody(Body):
    """``POST /account/3pid/bind``."""

    client_secret: ClientSecret
    sid: Required
    id_server: Annotated[str, BeforeValidator(_present), _clean(255)]
    id_access_token: Required


class ThreePidDeleteBody(Body):
    """``POST /account/3pid/delete`` and ``/unbind``."""

    medium: Annotated[str, BeforeValidator(_present), one_of(MEDIA, "'medium' must be 'email' or 'msisdn'")]
    address: Required
    id_server: IdServer | None = None


class SubmitTokenBody(Body):
    """``POST /_sup/email/submit_token`` (the ``submit_url`` a ``requestToken`` answer names)."""

    sid: Annotated[str, Field(min_length=1, max_length=1024)]
    client_secret: Annotated[str, Field(min_length=1, max_length=1024)]
    token: Annotated[str, Field(min_length=1, max_length=1024)]


__all__ = ["MEDIA", "EmailTokenRequest", "MsisdnTokenRequest", "SessionCreds", "ThreePidAddBody", "ThreePidBindBody",
           "ThreePidDeleteBody", "ThreePidLegacyBody", "SubmitTokenBody"]
