"""``GET /_matrix/client/v1/rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]]``."""

from __future__ import annotations

from typing import Any

from homeserver.api.errors import InvalidParam
from homeserver.handlers.relations import RelationsHandler
from homeserver.http.request import SupRequest
from homeserver.http.router import Router
from homeserver.http.routes import add_route

BASE = "/rooms/{room_id}/relations/{event_id}"


class RelationsServlet:
    def __init__(self, auth: Any, relations: RelationsHandler) -> None:
        self.auth = auth
        self.relations = relations

    def register(self, router: Router) -> None:
        add_route(router, "client_v1", "GET", BASE, self.on_get, "relations")
        add_route(router, "client_v1", "GET", BASE + "/{rel_type}", self.on_get, "relations_type")
        add_route(router, "client_v1", "GET", BASE + "/{rel_type}/{event_type}", self.on_get, "relations_type_event")

    async def on_get(self, request: SupRequest, room_id: str, event_id: str, rel_type: str | None = None,
                     event_type: str | None = None) -> tuple[int, dict[str, Any]]:
        requester = await self.auth.get_user(request)
        if not room_id.startswith("!") or not event_id.startswith("$"):
            raise InvalidParam("Invalid room or event id")
        direction = request.query_str("dir", "b")
        if direction not in ("b", "f"):
            raise InvalidParam("dir must be 'b' or 'f'")
        limit = request.query_int("limit", 5, minimum=1, maximum=100) or 5
        recurse = request.query_bool("recurse") if request.query_str("recurse") is not None else None
        return 200, await self.relations.get_relations(
            requester.user_id, room_id, event_id, rel_type, event_type, request.query_str("from"),
            request.query_str("to"), limit, direction, recurse,
        )
