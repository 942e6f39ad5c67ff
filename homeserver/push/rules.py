"""Push rules as data: the spec's server-default rules (v1.19), a user's ruleset document and its validation.

A user's stored document (``storage/stores/push_rules.py``) holds only what the user changed::

    {"user": {"override": [rule, ...], "content": [...], "room": [...], "sender": [...], "underride": [...]},
     "defaults": {".m.rule.message": {"enabled": false, "actions": [...]}, ...}}

:func:`build_ruleset` merges it with the defaults into the client form (``GET /pushrules/``), in priority
order: ``.m.rule.master``, user overrides, default overrides, user content, default content, room, sender,
user underrides, default underrides.
"""

from __future__ import annotations

import copy
from typing import Any

from homeserver.api.errors import Codes, InvalidParam, MatrixError
from homeserver.api.models.push import HISTORICAL_ACTIONS, PushRuleBody  # noqa: F401 (HISTORICAL_ACTIONS re-exported)

KINDS = ("override", "content", "room", "sender", "underride")
# Deprecated (v1.7) rules that only apply to events without ``m.mentions``.
LEGACY_MENTION_RULES = frozenset({".m.rule.contains_display_name", ".m.rule.contains_user_name", ".m.rule.roomnotif"})
MAX_RULE_ID = 255
MAX_RULES_PER_KIND = 500

_SOUND = {"set_tweak": "sound", "value": "default"}
_HIGHLIGHT = {"set_tweak": "highlight"}
USER_ID_PLACEHOLDER = "@user_id"  # replaced with the owner's id in conditions
LOCALPART_PLACEHOLDER = "user_localpart"


def _match(key: str, pattern: str) -> dict[str, Any]:
    return {"kind": "event_match", "key": key, "pattern": pattern}


def _rule(rule_id: str, conditions: list[dict[str, Any]] | None, actions: list[Any], enabled: bool = True,
          pattern: str | None = None) -> dict[str, Any]:
    r: dict[str, Any] = {"rule_id": rule_id, "default": True, "enabled": enabled}
    if conditions is not None:
        r["conditions"] = conditions
    if pattern is not None:
        r["pattern"] = pattern
    r["actions"] = actions
    return r


MASTER = _rule(".m.rule.master", [], [], enabled=False)

DEFAULT_OVERRIDE = [
    _rule(".m.rule.suppress_notices", [_match("content.msgtype", "m.notice")], []),
    _rule(".m.rule.invite_for_me", [_match("type", "m.room.member"), _match("content.membership", "invite"),
                                    _match("state_key", USER_ID_PLACEHOLDER)], ["notify", _SOUND]),
    _rule(".m.rule.member_event", [_match("type", "m.room.member")], []),
    _rule(".m.rule.is_user_mention", [{"kind": "event_property_contains", "key": "content.m\\.mentions.user_ids",
                                       "value": USER_ID_PLACEHOLDER}], ["notify", _SOUND, _HIGHLIGHT]),
    _rule(".m.rule.contains_display_name", [{"kind": "contains_display_name"}], ["notify", _SOUND, _HIGHLIGHT]),
    _rule(".m.rule.is_room_mention", [{"kind": "event_property_is", "key": "content.m\\.mentions.room", "value": True},
                                      {"kind": "sender_notification_permission", "key": "room"}], ["notify", _HIGHLIGHT]),
    _rule(".m.rule.roomnotif", [_match("content.body", "@room"), {"kind": "sender_notification_permission", "key": "room"}],
          ["notify", _HIGHLIGHT]),
    _rule(".m.rule.tombstone", [_match("type", "m.room.tombstone"), _match("state_key", "")], ["notify", _HIGHLIGHT]),
    _rule(".m.rule.reaction", [_match("type", "m.reaction")], []),
    _rule(".m.rule.room.server_acl", [_match("type", "m.room.server_acl"), _match("state_key", "")], []),
    _rule(".m.rule.suppress_edits", [{"kind": "event_property_is", "key": "content.m\\.relates_to.rel_type", "value": "m.replace"}], []),
]

DEFAULT_CONTENT = [
    _rule(".m.rule.contains_user_name", None, ["notify", _SOUND, _HIGHLIGHT], pattern=LOCALPART_PLACEHOLDER),
]

DEFAULT_UNDERRIDE = [
    _rule(".m.rule.call", [_match("type", "m.call.invite")], ["notify", {"set_tweak": "sound", "value": "ring"}]),
    _rule(".m.rule.encrypted_room_one_to_one", [{"kind": "room_member_count", "is": "2"}, _match("type", "m.room.encrypted")],
          ["notify", _SOUND]),
    _rule(".m.rule.room_one_to_one", [{"kind": "room_member_count", "is": "2"}, _match("type", "m.room.message")],
          ["notify", _SOUND]),
    _rule(".m.rule.message", [_match("type", "m.room.message")], ["notify"]),
    _rule(".m.rule.encrypted", [_match("type", "m.room.encrypted")], ["notify"]),
]

DEFAULTS_BY_KIND: dict[str, list[dict[str, Any]]] = {
    "override": [MASTER, *DEFAULT_OVERRIDE], "content": DEFAULT_CONTENT, "room": [], "sender": [], "underride": DEFAULT_UNDERRIDE,
}
DEFAULT_IDS: dict[str, frozenset[str]] = {k: frozenset(r["rule_id"] for r in v) for k, v in DEFAULTS_BY_KIND.items()}


def empty_document() -> dict[str, Any]:
    return {"user": {k: [] for k in KINDS}, "defaults": {}}


def _personalise(value: Any, user_id: str) -> Any:
    if isinstance(value, dict):
        return {k: _personalise(v, user_id) for k, v in value.items()}
    if isinstance(value, list):
        return [_personalise(v, user_id) for v in value]
    if value == USER_ID_PLACEHOLDER:
        return user_id
    return value


def _default_for(rule: dict[str, Any], user_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    r = _personalise(copy.deepcopy(rule), user_id)
    if r.get("pattern") == LOCALPART_PLACEHOLDER:
        r["pattern"] = user_id[1:].split(":", 1)[0]
    change = changes.get(r["rule_id"])
    if change:
        if "enabled" in change:
            r["enabled"] = bool(change["enabled"])
        if "actions" in change:
            r["actions"] = copy.deepcopy(change["actions"])
    return r


def build_ruleset(doc: dict[str, Any], user_id: str) -> dict[str, list[dict[str, Any]]]:
    """The client form of the user's whole global ruleset (every kind present, priority order)."""
    user = doc.get("user") or {}
    changes = doc.get("defaults") or {}
    out: dict[str, list[dict[str, Any]]] = {}
    for kind in KINDS:
        defaults = [_default_for(r, user_id, changes) for r in DEFAULTS_BY_KIND[kind]]
        mine = [dict(r, default=False) for r in user.get(kind, [])]
        if kind == "override":
            out[kind] = defaults[:1] + mine + defaults[1:]  # .m.rule.master always first
        else:
            out[kind] = mine + defaults
    return out


def ordered_rules(ruleset: dict[str, list[dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """(kind, rule) in evaluation order."""
    return [(kind, r) for kind in KINDS for r in ruleset.get(kind, [])]


# ---- validation of client input ----

def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise InvalidParam(f"Unknown push rule kind {kind[:32]!r}")
    return kind


def check_scope(scope: str) -> None:
    if scope != "global":
        raise InvalidParam("Only the 'global' push rule scope is supported")


def check_new_rule_id(kind: str, rule_id: str) -> None:
    if not rule_id or len(rule_id) > MAX_RULE_ID:
        raise InvalidParam("rule_id must be 1-255 characters")
    if rule_id.startswith("."):
        raise InvalidParam("rule_ids starting with '.' are reserved for server-default rules")
    if "/" in rule_id or "\\" in rule_id:
        raise InvalidParam("rule_id may not contain slashes or backslashes")
    if kind == "room" and not (rule_id.startswith("!") and ":" in rule_id):
        raise InvalidParam("The rule_id of a room rule must be a room id")
    if kind == "sender" and not (rule_id.startswith("@") and ":" in rule_id):
        raise InvalidParam("The rule_id of a sender rule must be a user id")


def parse_rule_body(kind: str, rule_id: str, body: PushRuleBody) -> dict[str, Any]:
    """A user rule from a (validated) PUT body, enabled by default; what the rule's kind needs is checked here."""
    rule: dict[str, Any] = {"rule_id": rule_id, "enabled": True, "actions": list(body.actions)}
    if kind in ("override", "underride"):
        rule["conditions"] = list(body.conditions or [])
    elif kind == "content":
        if body.pattern is None:
            raise MatrixError(400, Codes.MISSING_PARAM, "A content rule needs a 'pattern'")
        if not body.pattern:
            raise InvalidParam("A content rule's 'pattern' must not be empty")
        rule["pattern"] = body.pattern
    return rule


def rule_conditions(kind: str, rule: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The effective conditions of any rule (content, room and sender rules have implied ones)."""
    if kind == "content":
        p = rule.get("pattern")
        return [_match("content.body", p)] if isinstance(p, str) else None
    if kind == "room":
        return [{"kind": "event_match", "key": "room_id", "pattern": rule["rule_id"], "literal": True}]
    if kind == "sender":
        return [{"kind": "event_match", "key": "sender", "pattern": rule["rule_id"], "literal": True}]
    conds = rule.get("conditions", [])
    return conds if isinstance(conds, list) else None
