"""Membership endpoints: join (by id or alias), invite, leave, forget, kick, ban, unban, knock."""

from __future__ import annotations

from typing import Any

from homeserver.api.models.rooms import InviteBody, MembershipBody, TargetedMembershipBody
from homeserver.handlers.membership import MembershipHandler
from homeserver.http.models import parse_body
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import Routes
from homeserver.rest.client.rooms import room_id_param

Resp = tuple[int, dict[str, Any]]


class MembershipServlet:
    def __init__(self, auth: Any, ratelimiter: Any, membership: MembershipHandler) -> None:
        self.auth = auth
        self.ratelimiter = ratelimiter
        self.membership = membership

    # ``await shadow_banned(user_id) -> bool`` (admin API, workers/wiring/admin.py)
    shadow_banned: Any = None

    def register(self, router: Router) -> None:
        v3 = Routes(router, "client_v3").add
        v3("POST", "/join/{room_id_or_alias}", self.on_join_alias, "join")
        v3("POST", "/knock/{room_id_or_alias}", self.on_knock, "knock")
        v3("POST", "/rooms/{room_id}/join", self.on_join, "room_join")
        for action in ("invite", "leave", "kick", "ban", "unban", "forget"):
            v3("POST", f"/rooms/{{room_id}}/{action}", getattr(self, f"on_{action}"), f"room_{action}")

    async def _ratelimit(self, kind: str, requester: Any) -> None:
        if self.ratelimiter is not None:
            await self.ratelimiter.check(kind, requester.user_id, exempt=requester.is_admin)

    async def _join(self, request: SupRequest, room: str) -> Resp:
        requester = await self.auth.get_user(request)
        body = parse_body(request, MembershipBody, optional=True)
        room_id, alias_servers = await self.membership.resolve_room_servers(room)
        room_id_param(room_id)
        await self._ratelimit("join", requester)
        servers = request.query_list("via") + request.query_list("server_name") + alias_servers
        await self.membership.update(requester.user_id, requester.user_id, room_id, "join", body.reason,
                                     servers=servers)
        return 200, {"room_id": room_id}

    async def on_join_alias(self, request: SupRequest, room_id_or_alias: str) -> Resp:
        return await self._join(request, room_id_or_alias)

    async def on_join(self, request: SupRequest, room_id: str) -> Resp:
        return await self._join(request, room_id_param(room_id))

    async def on_knock(self, request: SupRequest, room_id_or_alias: str) -> Resp:
        requester = await self.auth.get_user(request)
        body = parse_body(request, MembershipBody, optional=True)
        room_id, alias_servers = await self.membership.resolve_room_servers(room_id_or_alias)
        await self._ratelimit("join", requester)
        servers = request.query_list("via") + request.query_list("server_name") + alias_servers
        await self.membership.update(requester.user_id, requester.user_id, room_id, "knock", body.reason, servers=servers)
        return 200, {"room_id": room_id}

    async def on_invite(self, request: SupRequest, room_id: str) -> Resp:
        requester = await self.auth.get_user(request)
        room_id = room_id_param(room_id)
        body = parse_body(request, InviteBody)
        await self._ratelimit("invite", requester)
        if self.shadow_banned is not None and await self.shadow_banned(requester.user_id):
            return 200, {}  # a shadow-banned user's invite looks sent but is not
        await self.membership.update(requester.user_id, body.user_id, room_id, "invite", body.reason)
        return 200, {}

    async def on_leave(self, request: SupRequest, room_id: str) -> Resp:
        requester = await self.auth.get_user(request)
        body = parse_body(request, MembershipBody, optional=True)
        await self.membership.update(requester.user_id, requester.user_id, room_id_param(room_id), "leave", body.reason)
        return 200, {}

    async def on_kick(self, request: SupRequest, room_id: str) -> Resp:
        requester = await self.auth.get_user(request)
        body = parse_body(request, TargetedMembershipBody)
        await self.membership.update(requester.user_id, body.user_id, room_id_param(room_id), "leave", body.reason)
        return 200, {}

    async def on_ban(self, request: SupRequest, room_id: str) -> Resp:
        requester = await self.auth.get_user(request)
        body = parse_body(request, TargetedMembershipBody)
        await self.membership.update(requester.user_id, body.user_id, room_id_param(room_id), "ban", body.reason)
        return 200, {}

    async def on_unban(self, request: SupRequest, room_id: str) -> Resp:
        requester = await self.auth.get_user(request)
        body = parse_body(request, TargetedMembershipBody)
        room_id = room_id_param(room_id)
        await self.membership.unban(requester.user_id, body.user_id, room_id, body.reason)
        return 200, {}

    async def on_forget(self, request: SupRequest, room_id: str) -> Resp:
        requester = await self.auth.get_user(request)
        room_id = room_id_param(room_id)
        await self.membership.forget(requester.user_id, room_id)
        return 200, {}
