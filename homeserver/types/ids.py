"""Matrix identifiers (user ids, room ids, aliases, server names) per the spec grammar."""

from __future__ import annotations

import re
from dataclasses import dataclass

_SERVER_NAME_RE = re.compile(
    r"^(?:[A-Za-z0-9\-.]{1,255}|\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$"
)
# Historical user ids may contain any printable ASCII except ':'; new ones are stricter.
_HISTORICAL_LOCALPART_RE = re.compile(r"^[\x21-\x39\x3b-\x7e]+$")
_STRICT_LOCALPART_RE = re.compile(r"^[a-z0-9._=\-/+]+$")
MAX_ID_LENGTH = 255
_WHITE_SPACE_RE = re.compile(r"\s")  # for str patterns: exactly the characters for which str.isspace() holds


class InvalidId(ValueError):
    """A string that is not a valid identifier of the expected kind."""


def is_valid_server_name(name: str) -> bool:
    return bool(_SERVER_NAME_RE.match(name))


def _split(sigil: str, value: str, kind: str) -> tuple[str, str]:
    if not isinstance(value, str) or not value.startswith(sigil):
        raise InvalidId(f"{kind} must start with {sigil!r}")
    if len(value.encode("utf-8")) > MAX_ID_LENGTH:
        raise InvalidId(f"{kind} is longer than {MAX_ID_LENGTH} bytes")
    local, sep, domain = value[1:].partition(":")
    if not sep or not local or not is_valid_server_name(domain):
        raise InvalidId(f"{kind} {value!r} is not of the form {sigil}localpart:server")
    return local, domain


@dataclass(frozen=True)
class UserID:
    localpart: str
    domain: str

    @classmethod
    def parse(cls, value: str) -> "UserID":
        local, domain = _split("@", value, "user id")
        if not _HISTORICAL_LOCALPART_RE.match(local):
            raise InvalidId(f"user id {value!r} has an invalid localpart")
        return cls(local, domain)

    def to_string(self) -> str:
        return f"@{self.localpart}:{self.domain}"

    __str__ = to_string


def is_strict_localpart(localpart: str) -> bool:
    """The grammar for new registrations: lower-case a-z, 0-9 and ``._=-/+``."""
    return bool(_STRICT_LOCALPART_RE.match(localpart))


@dataclass(frozen=True)
class RoomAlias:
    localpart: str
    domain: str

    @classmethod
    def parse(cls, value: str) -> "RoomAlias":
        local, domain = _split("#", value, "room alias")
        return cls(local, domain)

    def to_string(self) -> str:
        return f"#{self.localpart}:{self.domain}"

    __str__ = to_string


def parse_room_id(value: str) -> str:
    """Room ids are ``!opaque:server`` (v1–11) or ``!hash`` (v12); returns the id unchanged."""
    if not isinstance(value, str) or not value.startswith("!") or len(value) < 2:
        raise InvalidId("room id must start with '!'")
    if len(value.encode("utf-8")) > MAX_ID_LENGTH:
        raise InvalidId(f"room id is longer than {MAX_ID_LENGTH} bytes")
    if _WHITE_SPACE_RE.search(value) is not None:  # \s is str.isspace(), in one C call (every room route)
        raise InvalidId("room id must not contain white space")
    return value


def parse_event_id(value: str) -> str:
    if not isinstance(value, str) or not value.startswith("$") or len(value) < 2:
        raise InvalidId("event id must start with '$'")
    if len(value.encode("utf-8")) > MAX_ID_LENGTH:
        raise InvalidId(f"event id is longer than {MAX_ID_LENGTH} bytes")
    return value
