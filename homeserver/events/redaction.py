"""The redaction algorithm for every room version.

Used to serve redacted events and, crucially, to compute reference hashes and
signatures (which cover the redacted form of an event).
"""

from __future__ import annotations

from typing import Any

from homeserver.events.canonical import json_copy
from homeserver.events.room_versions import RedactionRules, RoomVersion

JsonDict = dict[str, Any]

_TOP_LEVEL_V1 = frozenset(
    {
        "event_id",
        "type",
        "room_id",
        "sender",
        "state_key",
        "content",
        "hashes",
        "signatures",
        "depth",
        "prev_events",
        "prev_state",
        "auth_events",
        "origin",
        "origin_server_ts",
        "membership",
    }
)
# v11: `origin`, `membership` and `prev_state` are no longer protected.
_TOP_LEVEL_V11 = _TOP_LEVEL_V1 - {"origin", "membership", "prev_state"}

_PL_KEYS_V1 = frozenset(
    {
        "ban",
        "events",
        "events_default",
        "kick",
        "redact",
        "state_default",
        "users",
        "users_default",
    }
)

#: Sentinel meaning "keep the whole content".
ALL_KEYS: frozenset[str] = frozenset({"*"})

_CONTENT_V1: dict[str, frozenset[str]] = {
    "m.room.member": frozenset({"membership"}),
    "m.room.create": frozenset({"creator"}),
    "m.room.join_rules": frozenset({"join_rule"}),
    "m.room.power_levels": _PL_KEYS_V1,
    "m.room.aliases": frozenset({"aliases"}),
    "m.room.history_visibility": frozenset({"history_visibility"}),
}
_CONTENT_V6 = {k: v for k, v in _CONTENT_V1.items() if k != "m.room.aliases"}
_CONTENT_V8 = {**_CONTENT_V6, "m.room.join_rules": frozenset({"join_rule", "allow"})}
_CONTENT_V9 = {
    **_CONTENT_V8,
    "m.room.member": frozenset({"membership", "join_authorised_via_users_server"}),
}
_CONTENT_V11 = {
    **_CONTENT_V9,
    "m.room.create": ALL_KEYS,
    "m.room.power_levels": _PL_KEYS_V1 | {"invite"},
    "m.room.redaction": frozenset({"redacts"}),
}

_RULES: dict[RedactionRules, tuple[frozenset[str], dict[str, frozenset[str]]]] = {
    RedactionRules.V1: (_TOP_LEVEL_V1, _CONTENT_V1),
    RedactionRules.V6: (_TOP_LEVEL_V1, _CONTENT_V6),
    RedactionRules.V8: (_TOP_LEVEL_V1, _CONTENT_V8),
    RedactionRules.V9: (_TOP_LEVEL_V1, _CONTENT_V9),
    RedactionRules.V11: (_TOP_LEVEL_V11, _CONTENT_V11),
}


def _identity(value: object) -> object:
    return value


def allowed_top_level_keys(room_version: RoomVersion) -> frozenset[str]:
    return _RULES[room_version.redaction_rules][0]


def allowed_content_keys(room_version: RoomVersion, event_type: str) -> frozenset[str]:
    """Content keys kept for ``event_type`` (:data:`ALL_KEYS` = everything)."""
    return _RULES[room_version.redaction_rules][1].get(event_type, frozenset())


def redact_event_dict(
    event: JsonDict, room_version: RoomVersion, *, deep_copy: bool = True
) -> JsonDict:
    """Return a redacted copy of ``event`` (the input is not modified).

    ``deep_copy=False`` shares nested values with the input: only for callers
    that merely serialise the result (hashing, signing).
    """
    dc = json_copy if deep_copy else _identity
    top_keys, content_rules = _RULES[room_version.redaction_rules]
    redacted = {k: dc(v) for k, v in event.items() if k in top_keys}

    content = event.get("content")
    if not isinstance(content, dict):
        content = {}
    keep = content_rules.get(event.get("type", ""), frozenset())
    if keep is ALL_KEYS:
        new_content = dc(content)
    else:
        new_content = {k: dc(v) for k, v in content.items() if k in keep}

    # v11: member events keep only `signed` inside `third_party_invite`.
    if (
        room_version.redaction_rules is RedactionRules.V11
        and event.get("type") == "m.room.member"
    ):
        tpi = content.get("third_party_invite")
        if isinstance(tpi, dict) and "signed" in tpi:
            new_content["third_party_invite"] = {"signed": dc(tpi["signed"])}

    redacted["content"] = new_content
    return redacted
