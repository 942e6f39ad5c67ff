"""The push-rule evaluator: pure functions of (rules, event, context) → actions. No I/O.

``compile_ruleset(ruleset)`` turns the client form (``rules.build_ruleset``) into a tuple of compiled
rules once per user and ruleset version; ``evaluate(compiled, event, ctx)`` walks it in priority order
and returns the first enabled matching rule's actions (or None). ``outcome(actions)`` reduces actions to
(notify, highlight, tweaks).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from homeserver.types.glob import Glob, compile_glob, literal_glob
from homeserver.push.rules import (
    HISTORICAL_ACTIONS,
    LEGACY_MENTION_RULES,
    ordered_rules,
    rule_conditions,
)

_MISSING = object()
GLOB_BUDGET_PER_EVALUATION = 8_000_000  # character steps (about 30 ms of matching at worst)
_MEMBER_COUNT_RE = re.compile(r"^(==|<=|>=|<|>)?([0-9]+)$")


@dataclass(frozen=True)
class EvalContext:
    """What the conditions need beyond the event, as of evaluation time."""

    user_id: str
    display_name: str | None = None
    member_count: int = 0
    sender_power_level: int = 0
    notification_levels: dict[str, int] = field(default_factory=dict)  # power_levels.notifications ("room" defaults to 50)
    # Glob work left for this evaluation (one user, one event): each match is linear, but a user may hold
    # thousands of rules; past the budget further glob conditions do not match (security review #1).
    glob_budget: list[int] = field(default_factory=lambda: [GLOB_BUDGET_PER_EVALUATION])


def split_path(key: str) -> list[str]:
    """Dot-separated property path: ``.`` separates, ``\\.`` is a literal dot, ``\\\\`` a literal backslash;
    any other backslash is literal."""
    parts: list[str] = []
    cur: list[str] = []
    i, n = 0, len(key)
    while i < n:
        c = key[i]
        if c == "\\" and i + 1 < n and key[i + 1] in ".\\":
            cur.append(key[i + 1])
            i += 2
            continue
        if c == ".":
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    return parts


def lookup(event: dict[str, Any], path: list[str]) -> Any:
    value: Any = event
    for part in path:
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _exact(a: Any, b: Any) -> bool:
    """Canonical-JSON scalar equality: no casts (True is not 1), no floats."""
    if isinstance(a, float) or isinstance(b, float):
        return False
    return type(a) is type(b) and a == b


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, (str, bool)) or (isinstance(v, int) and -(2**53) + 1 <= v <= 2**53 - 1)


Condition = Callable[[dict[str, Any], EvalContext], bool]


def _never(event: dict[str, Any], ctx: EvalContext) -> bool:
    return False


def compile_condition(cond: Any) -> Condition:
    """One condition → a predicate. Malformed or unknown conditions never match."""
    if not isinstance(cond, dict):
        return _never
    kind = cond.get("kind")
    if kind == "event_match":
        key, pattern = cond.get("key"), cond.get("pattern")
        if not isinstance(key, str) or not isinstance(pattern, str):
            return _never
        path = split_path(key)
        if cond.get("literal"):  # room and sender rules: the rule id itself
            return lambda e, c: lookup(e, path) == pattern
        glob = compile_glob(pattern, word_boundary=(path == ["content", "body"]))  # linear time, no regex

        def event_match(e: dict[str, Any], c: EvalContext) -> bool:
            v = lookup(e, path)
            if not isinstance(v, str):
                return False
            cost = len(v) * glob.work_per_char
            if cost > 4096:  # short values are free: the budget only ever bites on long bodies
                budget = c.glob_budget
                if budget[0] < cost:
                    return False
                budget[0] -= cost
            return glob.matches(v)

        return event_match
    if kind in ("event_property_is", "event_property_contains"):
        key, want = cond.get("key"), cond.get("value", _MISSING)
        if not isinstance(key, str) or want is _MISSING or not _scalar(want):
            return _never
        path = split_path(key)
        if kind == "event_property_is":
            return lambda e, c: _scalar(v := lookup(e, path)) and _exact(v, want)
        return lambda e, c: isinstance(v := lookup(e, path), list) and any(_exact(x, want) for x in v if _scalar(x))
    if kind == "contains_display_name":
        return _contains_display_name
    if kind == "room_member_count":
        m = _MEMBER_COUNT_RE.match(str(cond.get("is", "")))
        if m is None or not isinstance(cond.get("is"), str):
            return _never
        op, n = m.group(1) or "==", int(m.group(2))
        ops: dict[str, Callable[[int], bool]] = {
            "==": lambda x: x == n, "<": lambda x: x < n, ">": lambda x: x > n, "<=": lambda x: x <= n, ">=": lambda x: x >= n,
        }
        test = ops[op]
        return lambda e, c: test(c.member_count)
    if kind == "sender_notification_permission":
        key = cond.get("key")
        if not isinstance(key, str):
            return _never
        return lambda e, c: c.sender_power_level >= c.notification_levels.get(key, 50)
    return _never


def _contains_display_name(event: dict[str, Any], ctx: EvalContext) -> bool:
    name = ctx.display_name
    body = lookup(event, ["content", "body"])
    if not name or not isinstance(body, str):
        return False
    return _display_name_glob(name).matches(body)


@lru_cache(maxsize=4096)
def _display_name_glob(name: str) -> Glob:
    return literal_glob(name, word_boundary=True)


@dataclass(frozen=True)
class CompiledRule:
    kind: str
    rule_id: str
    conditions: tuple[Condition, ...]
    actions: tuple[Any, ...]
    legacy_mention: bool  # deprecated rule: only for events without m.mentions


def compile_ruleset(ruleset: dict[str, list[dict[str, Any]]]) -> tuple[CompiledRule, ...]:
    """Enabled rules in evaluation order, compiled (disabled ones are dropped: they never match)."""
    out: list[CompiledRule] = []
    for kind, rule in ordered_rules(ruleset):
        if not rule.get("enabled", True):
            continue
        conds = rule_conditions(kind, rule)
        if conds is None:
            continue
        actions = rule.get("actions", [])
        actions = tuple(a for a in actions if not (isinstance(a, str) and a in HISTORICAL_ACTIONS)) if isinstance(actions, list) else ()
        rid = str(rule.get("rule_id", ""))
        out.append(CompiledRule(kind, rid, tuple(compile_condition(c) for c in conds), actions,
                                bool(rule.get("default")) and rid in LEGACY_MENTION_RULES))
    return tuple(out)


def evaluate(rules: tuple[CompiledRule, ...], event: dict[str, Any], ctx: EvalContext) -> tuple[Any, ...] | None:
    """The actions of the first matching rule, or None when no rule matches."""
    content = event.get("content")
    has_mentions = isinstance(content, dict) and "m.mentions" in content
    for rule in rules:
        if rule.legacy_mention and has_mentions:
            continue
        if all(cond(event, ctx) for cond in rule.conditions):
            return rule.actions
    return None


@dataclass(frozen=True)
class Outcome:
    notify: bool
    highlight: bool
    tweaks: dict[str, Any]


NO_NOTIFY = Outcome(False, False, {})


def outcome(actions: tuple[Any, ...] | list[Any] | None) -> Outcome:
    if not actions:
        return NO_NOTIFY
    notify = False
    tweaks: dict[str, Any] = {}
    for a in actions:
        if a == "notify":
            notify = True
        elif isinstance(a, dict) and isinstance(a.get("set_tweak"), str):
            tweaks[a["set_tweak"]] = a.get("value", True) if a["set_tweak"] == "highlight" else a.get("value")
    if not notify:
        return NO_NOTIFY
    return Outcome(True, tweaks.get("highlight") is True, tweaks)
