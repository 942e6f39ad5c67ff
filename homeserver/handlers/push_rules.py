"""Push rules API logic: read, create/replace with before/after, delete, enabled, actions.

The source of truth is ``PushRulesStore`` (one document per user with what they changed). After every change
the full ruleset is copied to the user's ``m.push_rules`` account data so /sync carries it, and listeners
(unread-count caches) are told. Compiled rules are cached per user (bounded LRU, dropped on change).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from homeserver.api.errors import InvalidParam, MatrixError, NotFound
from homeserver.api.models.push import PushRuleBody
from homeserver.linearizer import Linearizer
from homeserver.push.evaluator import CompiledRule, compile_ruleset
from homeserver.push.rules import (
    DEFAULT_IDS,
    KINDS,
    MAX_RULES_PER_KIND,
    build_ruleset,
    check_kind,
    check_new_rule_id,
    check_scope,
    empty_document,
    parse_rule_body,
)
from homeserver.types.caches import LruCache, drop_key
from storage.stores.push_rules import PushRulesStore

logger = logging.getLogger(__name__)

CACHE_SIZE = 20_000
AccountDataWriter = Callable[[str, dict[str, Any]], Awaitable[Any]]


class PushRulesHandler:
    def __init__(self, store: PushRulesStore, write_account_data: AccountDataWriter | None = None) -> None:
        self.store = store
        self._write_account_data = write_account_data
        self._lock = Linearizer("push_rules")
        self._cache = LruCache("push_rules", CACHE_SIZE, invalidate_on={"user": drop_key})  # user -> (ruleset, version, compiled)
        self._listeners: list[Callable[[str], None]] = []

    def add_listener(self, fn: Callable[[str], None]) -> None:
        """``fn(user_id)`` after the user's rules changed."""
        self._listeners.append(fn)

    # ---- reads ----
    async def _load(self, user_id: str) -> tuple[dict[str, Any], int, tuple[CompiledRule, ...]]:
        hit = self._cache.get_(user_id)
        if hit is not None:
            return hit
        doc, version = await self.store.get(user_id)
        ruleset = build_ruleset(doc or empty_document(), user_id)
        entry = (ruleset, version, compile_ruleset(ruleset))
        self._cache.put(user_id, entry)
        return entry

    async def ruleset(self, user_id: str) -> dict[str, list[dict[str, Any]]]:
        return copy.deepcopy((await self._load(user_id))[0])

    async def compiled(self, user_id: str) -> tuple[tuple[CompiledRule, ...], int]:
        """(compiled rules in evaluation order, version) — the version changes whenever the rules do."""
        _, version, compiled = await self._load(user_id)
        return compiled, version

    async def get_all(self, user_id: str) -> dict[str, Any]:
        return {"global": await self.ruleset(user_id)}

    async def get_rule(self, user_id: str, scope: str, kind: str, rule_id: str) -> dict[str, Any]:
        check_scope(scope)
        check_kind(kind)
        for r in (await self._load(user_id))[0][kind]:
            if r["rule_id"] == rule_id:
                return copy.deepcopy(r)
        raise NotFound("The push rule was not found.")

    # ---- writes ----
    async def _mutate(self, user_id: str, fn: Callable[[dict[str, Any]], None]) -> None:
        async with self._lock.queue(user_id):
            doc, _ = await self.store.get(user_id)
            doc = doc or empty_document()
            for k in KINDS:
                doc.setdefault("user", {}).setdefault(k, [])
            doc.setdefault("defaults", {})
            fn(doc)
            await self.store.put(user_id, doc)
            self._cache.invalidate(user_id)
            await self._mirror(user_id)
        for listener in self._listeners:
            try:
                listener(user_id)
            except Exception:
                logger.exception("push rules listener failed")

    async def _mirror(self, user_id: str) -> None:
        if self._write_account_data is None:
            return
        try:
            await self._write_account_data(user_id, {"global": await self.ruleset(user_id)})
        except Exception:
            logger.exception("could not copy push rules to account data")

    async def ensure_mirrored(self, user_id: str) -> None:
        """Write the account-data copy for a user who never changed a rule (so /sync carries m.push_rules)."""
        doc, _version = await self.store.get(user_id)
        if doc is None:
            await self._mutate(user_id, lambda d: None)

    async def put_rule(self, user_id: str, scope: str, kind: str, rule_id: str, body: PushRuleBody,
                       before: str | None, after: str | None) -> None:
        check_scope(scope)
        check_kind(kind)
        if rule_id in DEFAULT_IDS[kind] or rule_id.startswith("."):
            raise InvalidParam("Server-default rules cannot be replaced; use .../enabled or .../actions")
        check_new_rule_id(kind, rule_id)
        for name, ref in (("before", before), ("after", after)):
            if ref is not None and ref.startswith("."):
                raise InvalidParam(f"'{name}' cannot refer to a server-default rule")
        new_rule = parse_rule_body(kind, rule_id, body)

        def apply(doc: dict[str, Any]) -> None:
            rules: list[dict[str, Any]] = doc["user"][kind]
            existing = next((i for i, r in enumerate(rules) if r["rule_id"] == rule_id), None)
            if existing is not None:
                new_rule["enabled"] = bool(rules[existing].get("enabled", True))  # an update keeps enabled/disabled
            if existing is not None and before is None and after is None:
                rules[existing] = new_rule  # an update keeps its place
                return
            if existing is not None:
                rules.pop(existing)
            elif len(rules) >= MAX_RULES_PER_KIND:
                raise MatrixError(400, "M_LIMIT_EXCEEDED", f"At most {MAX_RULES_PER_KIND} {kind} rules")
            ref = before if before is not None else after
            if ref is None:
                rules.insert(0, new_rule)  # a new rule is the most important user rule of its kind
                return
            idx = next((i for i, r in enumerate(rules) if r["rule_id"] == ref), None)
            if idx is None:
                raise NotFound(f"The push rule {ref[:64]!r} given in '{'before' if before is not None else 'after'}' was not found.")
            rules.insert(idx if before is not None else idx + 1, new_rule)

        await self._mutate(user_id, apply)

    async def delete_rule(self, user_id: str, scope: str, kind: str, rule_id: str) -> None:
        check_scope(scope)
        check_kind(kind)
        if rule_id in DEFAULT_IDS[kind]:
            raise InvalidParam("Server-default rules cannot be deleted")

        def apply(doc: dict[str, Any]) -> None:
            rules = doc["user"][kind]
            keep = [r for r in rules if r["rule_id"] != rule_id]
            if len(keep) == len(rules):
                raise NotFound("The push rule was not found.")
            doc["user"][kind] = keep

        await self._mutate(user_id, apply)

    async def _set_attr(self, user_id: str, scope: str, kind: str, rule_id: str, attr: str, value: Any) -> None:
        check_scope(scope)
        check_kind(kind)

        def apply(doc: dict[str, Any]) -> None:
            if rule_id in DEFAULT_IDS[kind]:
                doc["defaults"].setdefault(rule_id, {})[attr] = value
                return
            for r in doc["user"][kind]:
                if r["rule_id"] == rule_id:
                    r[attr] = value
                    return
            raise NotFound("The push rule was not found.")

        await self._mutate(user_id, apply)

    async def set_enabled(self, user_id: str, scope: str, kind: str, rule_id: str, enabled: bool) -> None:
        await self._set_attr(user_id, scope, kind, rule_id, "enabled", enabled)

    async def set_actions(self, user_id: str, scope: str, kind: str, rule_id: str, actions: list[Any]) -> None:
        """``actions`` as ``PushRuleActionsBody`` checked them (historical actions already dropped)."""
        await self._set_attr(user_id, scope, kind, rule_id, "actions", list(actions))
