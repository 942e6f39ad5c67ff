"""The one error model of the Client-Server and Server-Server APIs.

Every error a client sees is a :class:`MatrixError`: an HTTP status, a spec
``errcode`` and a human readable message, rendered as
``{"errcode": ..., "error": ..., **extra}``. Internal layers raise their own
exception types; the layer that understands them translates to these.
"""

from __future__ import annotations

from typing import Any


class Codes:
    """Every errcode the specification defines (plus the few we add)."""

    FORBIDDEN = "M_FORBIDDEN"
    UNKNOWN_TOKEN = "M_UNKNOWN_TOKEN"
    MISSING_TOKEN = "M_MISSING_TOKEN"
    USER_LOCKED = "M_USER_LOCKED"
    USER_SUSPENDED = "M_USER_SUSPENDED"
    BAD_JSON = "M_BAD_JSON"
    NOT_JSON = "M_NOT_JSON"
    NOT_FOUND = "M_NOT_FOUND"
    LIMIT_EXCEEDED = "M_LIMIT_EXCEEDED"
    UNRECOGNIZED = "M_UNRECOGNIZED"
    UNKNOWN = "M_UNKNOWN"
    UNAUTHORIZED = "M_UNAUTHORIZED"
    USER_DEACTIVATED = "M_USER_DEACTIVATED"
    USER_IN_USE = "M_USER_IN_USE"
    INVALID_USERNAME = "M_INVALID_USERNAME"
    ROOM_IN_USE = "M_ROOM_IN_USE"
    INVALID_ROOM_STATE = "M_INVALID_ROOM_STATE"
    THREEPID_IN_USE = "M_THREEPID_IN_USE"
    THREEPID_NOT_FOUND = "M_THREEPID_NOT_FOUND"
    THREEPID_AUTH_FAILED = "M_THREEPID_AUTH_FAILED"
    THREEPID_DENIED = "M_THREEPID_DENIED"
    THREEPID_MEDIUM_NOT_SUPPORTED = "M_THREEPID_MEDIUM_NOT_SUPPORTED"
    SERVER_NOT_TRUSTED = "M_SERVER_NOT_TRUSTED"
    UNSUPPORTED_ROOM_VERSION = "M_UNSUPPORTED_ROOM_VERSION"
    INCOMPATIBLE_ROOM_VERSION = "M_INCOMPATIBLE_ROOM_VERSION"
    BAD_STATE = "M_BAD_STATE"
    GUEST_ACCESS_FORBIDDEN = "M_GUEST_ACCESS_FORBIDDEN"
    CAPTCHA_NEEDED = "M_CAPTCHA_NEEDED"
    CAPTCHA_INVALID = "M_CAPTCHA_INVALID"
    MISSING_PARAM = "M_MISSING_PARAM"
    INVALID_PARAM = "M_INVALID_PARAM"
    TOO_LARGE = "M_TOO_LARGE"
    EXCLUSIVE = "M_EXCLUSIVE"
    RESOURCE_LIMIT_EXCEEDED = "M_RESOURCE_LIMIT_EXCEEDED"
    CANNOT_LEAVE_SERVER_NOTICE_ROOM = "M_CANNOT_LEAVE_SERVER_NOTICE_ROOM"
    THREEPID_MEDIUM_NOT_SUPPORTED_ = "M_THREEPID_MEDIUM_NOT_SUPPORTED"
    WEAK_PASSWORD = "M_WEAK_PASSWORD"
    UNABLE_TO_AUTHORISE_JOIN = "M_UNABLE_TO_AUTHORISE_JOIN"
    UNABLE_TO_GRANT_JOIN = "M_UNABLE_TO_GRANT_JOIN"
    BAD_ALIAS = "M_BAD_ALIAS"
    DUPLICATE_ANNOTATION = "M_DUPLICATE_ANNOTATION"
    NOT_YET_UPLOADED = "M_NOT_YET_UPLOADED"
    CANNOT_OVERWRITE_MEDIA = "M_CANNOT_OVERWRITE_MEDIA"
    WRONG_ROOM_KEYS_VERSION = "M_WRONG_ROOM_KEYS_VERSION"
    INVALID_SIGNATURE = "M_INVALID_SIGNATURE"
    INVITE_BLOCKED = "M_INVITE_BLOCKED"
    SESSION_NOT_VALIDATED = "M_SESSION_NOT_VALIDATED"
    NO_VALID_SESSION = "M_NO_VALID_SESSION"
    SESSION_EXPIRED = "M_SESSION_EXPIRED"
    TOKEN_INCORRECT = "M_TOKEN_INCORRECT"
    PROFILE_TOO_LARGE = "M_PROFILE_TOO_LARGE"
    KEY_TOO_LARGE = "M_KEY_TOO_LARGE"
    UNKNOWN_POS = "M_UNKNOWN_POS"
    URL_NOT_SET = "M_URL_NOT_SET"
    BAD_STATUS = "M_BAD_STATUS"
    CONNECTION_FAILED = "M_CONNECTION_FAILED"
    CONNECTION_TIMEOUT = "M_CONNECTION_TIMEOUT"
    # SUP extension: second factor needed / wrong (see docs/two-factor.md).
    TOTP_REQUIRED = "ORG_SUP_TOTP_REQUIRED"
    TOTP_INVALID = "ORG_SUP_TOTP_INVALID"


class MatrixError(Exception):
    """An error with a Matrix errcode, sent to the client as JSON."""

    def __init__(
        self,
        status: int,
        errcode: str,
        msg: str,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(msg)
        self.status = status
        self.errcode = errcode
        self.msg = msg
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"errcode": self.errcode, "error": self.msg}
        body.update(self.extra)
        return body

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status}, {self.errcode!r}, {self.msg!r})"


class BadJson(MatrixError):
    def __init__(self, msg: str = "Content not a valid JSON object") -> None:
        super().__init__(400, Codes.BAD_JSON, msg)


class NotJson(MatrixError):
    def __init__(self, msg: str = "Content not JSON") -> None:
        super().__init__(400, Codes.NOT_JSON, msg)


class InvalidParam(MatrixError):
    def __init__(self, msg: str) -> None:
        super().__init__(400, Codes.INVALID_PARAM, msg)


class MissingParam(MatrixError):
    def __init__(self, msg: str) -> None:
        super().__init__(400, Codes.MISSING_PARAM, msg)


class Forbidden(MatrixError):
    def __init__(self, msg: str = "Forbidden", errcode: str = Codes.FORBIDDEN) -> None:
        super().__init__(403, errcode, msg)


class NotFound(MatrixError):
    def __init__(self, msg: str = "Not found", errcode: str = Codes.NOT_FOUND) -> None:
        super().__init__(404, errcode, msg)


class Unrecognized(MatrixError):
    def __init__(self, status: int = 404, msg: str = "Unrecognized request") -> None:
        super().__init__(status, Codes.UNRECOGNIZED, msg)


class TooLarge(MatrixError):
    def __init__(self, msg: str = "Request body too large") -> None:
        super().__init__(413, Codes.TOO_LARGE, msg)


class LimitExceeded(MatrixError):
    def __init__(self, retry_after_ms: int, msg: str = "Too many requests") -> None:
        retry_after_ms = max(0, int(retry_after_ms))
        super().__init__(
            429,
            Codes.LIMIT_EXCEEDED,
            msg,
            {"retry_after_ms": retry_after_ms},
            headers={"Retry-After": str((retry_after_ms + 999) // 1000)},
        )


class MissingToken(MatrixError):
    def __init__(self, msg: str = "Missing access token") -> None:
        super().__init__(401, Codes.MISSING_TOKEN, msg)


class UnknownToken(MatrixError):
    def __init__(self, msg: str = "Unknown access token", soft_logout: bool = False) -> None:
        super().__init__(401, Codes.UNKNOWN_TOKEN, msg, {"soft_logout": soft_logout})
