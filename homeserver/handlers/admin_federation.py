"""Admin view of outbound federation: destinations, their backoff, the rooms shared with them, and a reset.

Reads the sender's durable state (``federation_destinations``) through the outbound store; a reset clears the
stored backoff and the in-memory one of this process's sender, so it retries at once.
"""

from __future__ import annotations

from typing import Any

from homeserver.api.errors import Codes, MatrixError, NotFound

ORDERS = ("destination", "retry_last_ts", "retry_interval", "failure_ts", "last_successful_stream_ordering")


def destination_json(row: Any) -> dict[str, Any]:
    interval = int(row.retry_interval_ms)
    return {
        "destination": row.destination,
        # when the last (failed) attempt was made: the retry time minus the interval chosen then
        "retry_last_ts": int(row.retry_at_ts) - interval if row.retry_at_ts else 0,
        "retry_interval": interval,
        "failure_ts": row.failing_since_ts,
        "last_successful_stream_ordering": row.acked_stream or None,
    }


class AdminFederation:
    def __init__(self, server_name: str, store: Any, queries: Any, sender: Any = None) -> None:
        self.server_name = server_name
        self.store = store  # FederationOutboundStore: load_destinations, get_destination, set_backoff
        self.queries = queries
        self.sender = sender  # FederationSender of this process, if it runs here

    async def list(self, offset: int, limit: int, term: str | None, order_by: str, direction: str) -> dict[str, Any]:
        if order_by not in ORDERS:
            raise MatrixError(400, Codes.INVALID_PARAM, "Unknown value for order_by")
        if direction not in ("f", "b"):
            raise MatrixError(400, Codes.INVALID_PARAM, "Unknown direction: dir must be f or b")
        items = [destination_json(r) for r in await self.store.load_destinations()]
        if term:
            items = [d for d in items if term.lower() in d["destination"].lower()]
        items.sort(key=lambda d: (d[order_by] is None, d[order_by] if d[order_by] is not None else 0, d["destination"]),
                   reverse=direction == "b")
        page = items[offset : offset + limit]
        out: dict[str, Any] = {"destinations": page, "total": len(items)}
        if offset + len(page) < len(items):
            out["next_token"] = str(offset + len(page))
        return out

    async def _row(self, destination: str) -> Any:
        row = await self.store.get_destination(destination)
        if row is None:
            raise NotFound("Unknown destination")
        return row

    async def get(self, destination: str) -> dict[str, Any]:
        return destination_json(await self._row(destination))

    async def rooms(self, destination: str, offset: int, limit: int, direction: str) -> dict[str, Any]:
        if direction not in ("f", "b"):
            raise MatrixError(400, Codes.INVALID_PARAM, "Unknown direction: dir must be f or b")
        row = await self._row(destination)
        room_ids = await self.queries.rooms_with_server(destination)
        if direction == "b":
            room_ids.reverse()
        page = room_ids[offset : offset + limit]
        out: dict[str, Any] = {"rooms": [{"room_id": r, "stream_ordering": row.acked_stream} for r in page], "total": len(room_ids)}
        if offset + len(page) < len(room_ids):
            out["next_token"] = str(offset + len(page))
        return out

    async def reset_connection(self, destination: str) -> None:
        if destination == self.server_name:
            raise MatrixError(400, Codes.INVALID_PARAM, "The retry timing does not need to be reset for this server")
        row = await self._row(destination)
        if not row.retry_at_ts and not row.retry_interval_ms and row.failing_since_ts is None:
            raise MatrixError(400, Codes.UNKNOWN, "The retry timing does not need to be reset for a destination that is not failing")
        await self.store.set_backoff(destination, 0, 0, None)
        if self.sender is not None:
            self.sender.on_remote_contact(destination)  # clears the in-memory backoff and retries now
