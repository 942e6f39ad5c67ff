"""``POST /pushers/set`` and the push rule bodies (``PUT /pushrules/global/{kind}/{ruleId}[/enabled|/actions]``)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlparse

from pydantic import StringConstraints, field_validator, model_validator

from homeserver.api.models import Body, matrix_error

MAX_PUSHKEY_BYTES = 512
MAX_APP_ID = 64
MAX_FIELD = 512
Field512 = Annotated[str, StringConstraints(max_length=MAX_FIELD)]


class PusherSetBody(Body):
    """A pusher to create, replace or (``kind: null``) delete. Kind-specific checks that need the
    server (an email pusher's address must belong to the account) stay in the handler."""

    kind: str | None
    app_id: Annotated[str, StringConstraints(max_length=MAX_APP_ID)]
    pushkey: str
    app_display_name: Field512 | None = None
    device_display_name: Field512 | None = None
    lang: Field512 | None = None
    profile_tag: Field512 | None = None
    data: dict[str, Any] | None = None
    append: bool = False

    @field_validator("pushkey")
    @classmethod
    def _pushkey(cls, v: str) -> str:
        if len(v.encode()) > MAX_PUSHKEY_BYTES:
            raise matrix_error("M_INVALID_PARAM", "pushkey is longer than 512 bytes")
        return v

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str | None) -> str | None:
        if v is not None and v not in ("http", "email"):
            raise matrix_error("M_INVALID_PARAM", f"Unsupported pusher kind {v[:32]!r}")
        return v

    @model_validator(mode="after")
    def _complete(self) -> PusherSetBody:
        if self.kind is None:
            return self
        missing = [n for n in ("app_display_name", "device_display_name", "lang", "data") if getattr(self, n) is None]
        if missing:
            raise matrix_error("M_MISSING_PARAM", "Missing parameters: " + ", ".join(missing))
        data = self.data or {}
        if self.kind == "http":
            url = data.get("url")
            if not isinstance(url, str):
                raise matrix_error("M_MISSING_PARAM", "'data.url' is required for http pushers")
            parsed = urlparse(url)
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                raise matrix_error("M_INVALID_PARAM", "'data.url' must be an http(s) URL")
            if parsed.path != "/_matrix/push/v1/notify":
                raise matrix_error("M_INVALID_PARAM", "'data.url' must have the path /_matrix/push/v1/notify")
            fmt = data.get("format")
            if fmt is not None and fmt != "event_id_only":
                raise matrix_error("M_INVALID_PARAM", "'data.format' must be 'event_id_only' when given")
        elif "@" not in self.pushkey:
            raise matrix_error("M_INVALID_PARAM", "An email pusher's pushkey must be an email address")
        return self


HISTORICAL_ACTIONS = frozenset({"dont_notify", "coalesce"})
# condition kind -> (field, "str" | "scalar") it needs; unknown kinds are kept as sent (they never match)
CONDITION_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "event_match": (("key", "str"), ("pattern", "str")),
    "event_property_is": (("key", "str"), ("value", "scalar")),
    "event_property_contains": (("key", "str"), ("value", "scalar")),
    "room_member_count": (("is", "str"),),
    "sender_notification_permission": (("key", "str"),),
    "contains_display_name": (),
}


def _is_scalar(v: Any) -> bool:
    if v is None or isinstance(v, (str, bool)):
        return True
    return isinstance(v, int) and -(2**53) + 1 <= v <= 2**53 - 1


def check_actions(actions: list[Any]) -> list[Any]:
    """An actions array as stored: historical actions (dont_notify, coalesce) dropped, tweaks kept as sent."""
    out: list[Any] = []
    for a in actions:
        if isinstance(a, str):
            if a in HISTORICAL_ACTIONS:
                continue
            if a != "notify":
                raise matrix_error("M_INVALID_PARAM", f"Unknown action {a[:32]!r}")
            out.append(a)
        elif isinstance(a, dict):
            tweak = a.get("set_tweak")
            if not isinstance(tweak, str) or not tweak:
                raise matrix_error("M_INVALID_PARAM", "An object action must be a set_tweak with a string name")
            if tweak == "highlight" and "value" in a and not isinstance(a["value"], bool):
                raise matrix_error("M_INVALID_PARAM", "The highlight tweak's value must be a boolean")
            out.append(a)
        else:
            raise matrix_error("M_INVALID_PARAM", "Actions must be strings or objects")
    return out


def check_conditions(conditions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Conditions as sent (unknown keys and kinds kept); a known kind must carry its fields with their types."""
    for c in conditions:
        kind = c.get("kind")
        if not isinstance(kind, str):
            raise matrix_error("M_BAD_JSON", "Each condition must be an object with a string 'kind'")
        for name, typ in CONDITION_FIELDS.get(kind, ()):
            if name not in c:
                raise matrix_error("M_BAD_JSON", f"{kind} condition needs {name!r}")
            if not (isinstance(c[name], str) if typ == "str" else _is_scalar(c[name])):
                raise matrix_error("M_BAD_JSON", f"{kind} condition: bad {name!r}")
    return conditions


class PushRuleActionsBody(Body):
    """``PUT /pushrules/global/{kind}/{ruleId}/actions``."""

    actions: list[Any]

    @field_validator("actions")
    @classmethod
    def _actions(cls, v: list[Any]) -> list[Any]:
        return check_actions(v)


class PushRuleEnabledBody(Body):
    """``PUT /pushrules/global/{kind}/{ruleId}/enabled`` (a boolean, never 0/1 or "true")."""

    enabled: bool


class PushRuleBody(PushRuleActionsBody):
    """``PUT /pushrules/global/{kind}/{ruleId}``: ``conditions`` for override/underride rules, ``pattern`` for
    content rules (which rule kind needs which is checked against the path, in ``push/rules.py:parse_rule_body``)."""

    conditions: list[dict[str, Any]] | None = None
    pattern: str | None = None

    @field_validator("conditions")
    @classmethod
    def _conditions(cls, v: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        return None if v is None else check_conditions(v)
