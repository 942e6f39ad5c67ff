"""Reporting content to server admins: events (v1.1), rooms (v1.13), users (v1.14); admin listing.

Validation happens here, once: ``reason`` must be a string no longer than
``reports.max_reason_length`` characters; the legacy ``score`` (removed from the spec in v1.18)
is still accepted when it is an integer from -100 to 0, and refused otherwise.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from homeserver.api.errors import InvalidParam, NotFound
from homeserver.api.models.reports import EventReportBody, ReportBody
from storage.stores.reports import Report, ReportStore

Check = Callable[..., Awaitable[Any]]


class ReportsHandler:
    """``core.reports``. Collaborators come in as callables (no import of the rooms area)."""

    def __init__(self, store: ReportStore, clock: Any, max_reason_length: int = 1000) -> None:
        self.store = store
        self.clock = clock
        self.max_reason_length = max_reason_length
        # set by the wiring once rooms/accounts exist
        self.is_joined: Check | None = None          # (user_id, room_id) -> bool
        self.get_event: Check | None = None          # (event_id) -> row with .room_id / .sender, or None
        self.room_exists: Check | None = None        # (room_id) -> bool
        self.user_exists: Check | None = None        # (user_id) -> bool (local users only)
        self.format_event: Check | None = None       # (row) -> client-format event (redacted where redacted)
        self.room_info: Check | None = None          # (room_id) -> (name | None, canonical_alias | None)
        self.server_name = ""

    # ---- validation ----
    def _reason(self, reason: str | None) -> str | None:
        """The configured length limit (types and presence are checked at the edge)."""
        if reason is not None and len(reason) > self.max_reason_length:
            raise InvalidParam(f"'reason' must be at most {self.max_reason_length} characters")
        return reason

    # ---- client API ----
    async def report_event(self, reporter: str, room_id: str, event_id: str, body: EventReportBody) -> None:
        reason, score = self._reason(body.reason), body.score
        row = await self.get_event(event_id) if self.get_event else None
        joined = await self.is_joined(reporter, room_id) if self.is_joined else False
        if row is None or row.room_id != room_id or not joined or getattr(row, "redacted_by", None):
            raise NotFound("The event was not found or you are not joined to the room.")
        await self.store.add("event", self.clock.time_msec(), reporter, room_id, event_id, row.sender, reason, score)

    async def report_room(self, reporter: str, room_id: str, body: ReportBody) -> None:
        reason = self._reason(body.reason)
        if not room_id.startswith("!") or (self.room_exists and not await self.room_exists(room_id)):
            raise NotFound("The room was not found.")
        await self.store.add("room", self.clock.time_msec(), reporter, room_id, None, None, reason, None)

    async def report_user(self, reporter: str, user_id: str, body: ReportBody) -> None:
        reason = self._reason(body.reason)
        if not user_id.startswith("@") or ":" not in user_id:
            raise InvalidParam("Invalid user id")
        local = user_id.split(":", 1)[1] == self.server_name
        if local and self.user_exists is not None and not await self.user_exists(user_id):
            raise NotFound("The user was not found.")
        await self.store.add("user", self.clock.time_msec(), reporter, None, None, user_id, reason, None)

    # ---- admin API (Synapse-compatible shapes) ----
    async def _room_fields(self, room_id: str | None) -> dict[str, Any]:
        name = alias = None
        if room_id and self.room_info is not None:
            try:
                name, alias = await self.room_info(room_id)
            except Exception:
                name = alias = None
        return {"name": name, "canonical_alias": alias}

    async def admin_json(self, r: Report, full: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"id": r.id, "received_ts": r.received_ts, "reason": r.reason, "user_id": r.reporter}
        if r.kind == "event":
            out.update({"event_id": r.event_id, "room_id": r.room_id, "score": r.score, "sender": r.target_user_id})
            out.update(await self._room_fields(r.room_id))
            if full:
                row = await self.get_event(r.event_id) if (self.get_event and r.event_id) else None
                out["event_json"] = (await self.format_event(row)) if (row is not None and self.format_event) else None
        elif r.kind == "room":
            out.update({"room_id": r.room_id})
            out.update(await self._room_fields(r.room_id))
        else:
            out.update({"target_user_id": r.target_user_id})
        return out

    async def admin_list(self, kind: str, offset: int, limit: int, newest_first: bool, reporter: str | None,
                         room_id: str | None, target: str | None) -> dict[str, Any]:
        reports, total = await self.store.list(kind, offset, limit, newest_first, reporter, room_id, target)
        key = {"event": "event_reports", "room": "room_reports", "user": "user_reports"}[kind]
        out: dict[str, Any] = {key: [await self.admin_json(r, False) for r in reports], "total": total}
        if offset + len(reports) < total:
            out["next_token"] = offset + len(reports)
        return out

    async def admin_get(self, kind: str, report_id: int) -> dict[str, Any]:
        r = await self.store.get(report_id, kind)
        if r is None:
            raise NotFound("Report not found")
        return await self.admin_json(r, True)

    async def admin_delete(self, kind: str, report_id: int) -> None:
        if not await self.store.delete(report_id, kind):
            raise NotFound("Report not found")
