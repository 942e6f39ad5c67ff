"""The contacts API: ``/_matrix/client/unstable/org.sup.contacts/...`` (docs/contacts.md)."""

from __future__ import annotations

from typing import Any

from homeserver.handlers.contacts import ContactsHandler
from homeserver.api.models.contacts import ContactBody, ContactPolicyBody
from homeserver.http.models import parse_body
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import add_route

PREFIX = "/org.sup.contacts"  # under the client_unstable family


class ContactsServlet:
    def __init__(self, auth: Any, handler: ContactsHandler) -> None:
        self.auth = auth
        self.handler = handler

    def register(self, router: Router) -> None:
        for method, path, fn, name in (
            ("GET", "/contacts", self.on_list, "contacts_list"),
            ("GET", "/contacts/{user_id}", self.on_get, "contacts_get"),
            ("PUT", "/contacts/{user_id}", self.on_put, "contacts_put"),
            ("DELETE", "/contacts/{user_id}", self.on_delete, "contacts_delete"),
            ("GET", "/lists", self.on_lists, "contacts_lists"),
            ("GET", "/policy", self.on_get_policy, "contacts_policy_get"),
            ("PUT", "/policy", self.on_put_policy, "contacts_policy_put"),
        ):
            add_route(router, "client_unstable", method, PREFIX + path, fn, name)

    async def on_list(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        return 200, await self.handler.list(requester.user_id, request.query_str("list"))

    async def on_get(self, request: SupRequest, user_id: str) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        return 200, await self.handler.get(requester.user_id, user_id)

    async def on_put(self, request: SupRequest, user_id: str) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        await self.handler.put(requester.user_id, user_id, parse_body(request, ContactBody, optional=True))
        return 200, {}

    async def on_delete(self, request: SupRequest, user_id: str) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        await self.handler.delete(requester.user_id, user_id)
        return 200, {}

    async def on_lists(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        return 200, await self.handler.lists(requester.user_id)

    async def on_get_policy(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        return 200, await self.handler.get_policy(requester.user_id)

    async def on_put_policy(self, request: SupRequest) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        await self.handler.set_policy(requester.user_id, parse_body(request, ContactPolicyBody))
        return 200, {}
