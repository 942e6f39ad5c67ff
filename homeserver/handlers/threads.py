"""``GET /rooms/{roomId}/threads``: thread roots, most recently active first."""

from __future__ import annotations

from typing import Any

from homeserver.api.errors import Forbidden, InvalidParam, NotFound
from homeserver.handlers.relations import can_be_thread_root, decode_token, encode_token
from storage.stores.relations import RelationsStore

MAX_LIMIT = 100


class ThreadsHandler:
    def __init__(self, store: RelationsStore, events: Any, visibility: Any, formatter: Any) -> None:
        self.store = store
        self.events = events          # EventStore
        self.visibility = visibility  # VisibilityFilter
        self.formatter = formatter    # EventFormatter (bundles aggregations: the thread summary)

    async def list_threads(self, user_id: str, device_id: str | None, room_id: str, include: str,
                           from_token: str | None, limit: int) -> dict[str, Any]:
        if include not in ("all", "participated"):
            raise InvalidParam("include must be 'all' or 'participated'")
        try:
            await self.visibility.check_can_read_room(user_id, room_id)
        except Forbidden:
            raise
        except Exception:
            raise NotFound("Room not found") from None
        limit = max(1, min(limit, MAX_LIMIT))
        key = decode_token(from_token)
        chunk: list[dict[str, Any]] = []
        next_key = key
        # Roots the user cannot see are skipped; keep paging (bounded) so a page is not silently short.
        for _ in range(5):
            ids, next_key = await self.store.get_threads(room_id, user_id, include == "participated", next_key,
                                                         limit - len(chunk))
            rows = await self.events.get_events_as_list(ids)
            rows = [r for r in rows if r.room_id == room_id and can_be_thread_root(r.pdu)]
            rows = await self.visibility.filter(user_id, rows)
            chunk.extend(await self.formatter.format(rows, user_id, device_id))
            if next_key is None or len(chunk) >= limit:
                break
        out: dict[str, Any] = {"chunk": chunk}
        if next_key is not None:
            out["next_batch"] = encode_token(next_key)
        return out
