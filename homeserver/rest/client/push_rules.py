"""Push rules API: ``/pushrules/``, ``/pushrules/global/``, ``/pushrules/{scope}/{kind}/{ruleId}[/enabled|/actions]``."""

from __future__ import annotations

from typing import Any

from homeserver.api.errors import Unrecognized
from homeserver.api.models.push import PushRuleActionsBody, PushRuleBody, PushRuleEnabledBody
from homeserver.handlers.push_rules import PushRulesHandler
from homeserver.http.models import parse_body
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import add_route
from homeserver.push.rules import check_scope

ATTRS = ("enabled", "actions")


class PushRulesServlet:
    def __init__(self, auth: Any, rules: PushRulesHandler) -> None:
        self.auth = auth
        self.rules = rules

    def register(self, router: Router) -> None:
        add_route(router, "client", "GET", "/pushrules/", self.on_get_all, "pushrules_all")
        add_route(router, "client", "GET", "/pushrules", self.on_get_all, "pushrules_all_noslash")
        add_route(router, "client", "GET", "/pushrules/{scope}/", self.on_get_scope, "pushrules_scope")
        add_route(router, "client", "GET", "/pushrules/{scope}", self.on_get_scope, "pushrules_scope_noslash")
        add_route(router, "client", "GET", "/pushrules/{scope}/{kind}/{rule_id}", self.on_get_rule, "pushrule_get")
        add_route(router, "client", "PUT", "/pushrules/{scope}/{kind}/{rule_id}", self.on_put_rule, "pushrule_put")
        add_route(router, "client", "DELETE", "/pushrules/{scope}/{kind}/{rule_id}", self.on_delete_rule, "pushrule_delete")
        add_route(router, "client", "GET", "/pushrules/{scope}/{kind}/{rule_id}/{attr}", self.on_get_attr, "pushrule_attr_get")
        add_route(router, "client", "PUT", "/pushrules/{scope}/{kind}/{rule_id}/{attr}", self.on_put_attr, "pushrule_attr_put")

    async def on_get_all(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        await self.rules.ensure_mirrored(requester.user_id)
        return 200, await self.rules.get_all(requester.user_id)

    async def on_get_scope(self, request: SupRequest, scope: str) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        check_scope(scope)
        return 200, await self.rules.ruleset(requester.user_id)

    async def on_get_rule(self, request: SupRequest, scope: str, kind: str, rule_id: str) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        return 200, await self.rules.get_rule(requester.user_id, scope, kind, rule_id)

    async def on_put_rule(self, request: SupRequest, scope: str, kind: str, rule_id: str) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        body = parse_body(request, PushRuleBody)
        await self.rules.put_rule(requester.user_id, scope, kind, rule_id, body,
                                  request.query_str("before"), request.query_str("after"))
        return 200, {}

    async def on_delete_rule(self, request: SupRequest, scope: str, kind: str, rule_id: str) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        await self.rules.delete_rule(requester.user_id, scope, kind, rule_id)
        return 200, {}

    @staticmethod
    def _check_attr(attr: str) -> None:
        if attr not in ATTRS:
            raise Unrecognized(400, f"Unknown push rule attribute {attr[:32]!r}")

    async def on_get_attr(self, request: SupRequest, scope: str, kind: str, rule_id: str, attr: str) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        self._check_attr(attr)
        rule = await self.rules.get_rule(requester.user_id, scope, kind, rule_id)
        if attr == "enabled":
            return 200, {"enabled": bool(rule.get("enabled", True))}
        return 200, {"actions": rule.get("actions", [])}

    async def on_put_attr(self, request: SupRequest, scope: str, kind: str, rule_id: str, attr: str) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        self._check_attr(attr)
        if attr == "enabled":
            enabled = parse_body(request, PushRuleEnabledBody).enabled
            await self.rules.set_enabled(requester.user_id, scope, kind, rule_id, enabled)
        else:
            actions = parse_body(request, PushRuleActionsBody).actions
            await self.rules.set_actions(requester.user_id, scope, kind, rule_id, actions)
        return 200, {}
