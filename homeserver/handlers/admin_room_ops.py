"""Server admins acting on rooms: messages/context without membership, forward extremities, make room admin,
force-join, purge history (batched, in the background), redact a user's events, room media, room shutdown."""

from __future__ import annotations

import logging
import re
import secrets
from typing import Any

from twisted.internet import defer

from homeserver.api.errors import Codes, Forbidden, InvalidParam, MatrixError, NotFound
from homeserver.api.models.admin import PurgeHistoryBody, RedactUserBody
from homeserver.api.models.rooms import CreateRoomBody
from homeserver.events.event import thaw
from homeserver.events.power_levels import PowerLevels
from homeserver.types.ids import InvalidId, UserID
from homeserver.types.room_position import RoomPosition, after, before, parse_position
from storage.stores.admin_ops import AdminQueries, AdminTaskStore

logger = logging.getLogger(__name__)

PURGE_BATCH = 500
REDACT_BATCH = 100
MEDIA_SCAN_BATCH = 1000
_MXC_RE = re.compile(r"mxc://([A-Za-z0-9.\-:\[\]]+)/([A-Za-z0-9_\-]+)")





class AdminRoomOps:
    def __init__(self, core: Any, queries: AdminQueries, tasks: AdminTaskStore) -> None:
        self.core = core
        self.server_name: str = core.server_name
        self.clock = core.clock
        self.queries = queries
        self.tasks = tasks
        self._running: dict[str, defer.Deferred[Any]] = {}

    # ---- helpers ----
    async def room(self, room_id: str) -> Any:
        if not isinstance(room_id, str) or not room_id.startswith("!"):
            raise InvalidParam("Invalid room id")
        row = await self.core.room_store.get_room(room_id)
        if row is None or row["deleted"]:
            raise NotFound("Room not found")
        return await self.core.room_cache.get(room_id)

    def local_user(self, user_id: Any) -> str:
        if not isinstance(user_id, str):
            raise MatrixError(400, Codes.INVALID_PARAM, "user_id must be a string")
        try:
            parsed = UserID.parse(user_id)
        except InvalidId as e:
            raise MatrixError(400, Codes.INVALID_PARAM, f"Invalid user id: {e}") from None
        if parsed.domain != self.server_name:
            raise MatrixError(400, Codes.INVALID_PARAM, "This endpoint can only be used with local users")
        return user_id

    def _spawn(self, task_id: str, coro: Any) -> None:
        d = defer.ensureDeferred(coro)
        self._running[task_id] = d
        d.addBoth(lambda r: (self._running.pop(task_id, None), r)[1])

    async def wait(self, task_id: str) -> None:
        """Tests and the v1 (synchronous) shutdown wait for a background job."""
        d = self._running.get(task_id)
        if d is not None:
            await d

    # ---- messages / context / timestamp (admins see everything, no membership needed) ----
    async def messages(self, room_id: str, from_token: str | None, to_token: str | None, direction: str, limit: int,
                       filter_json: dict[str, Any] | None) -> dict[str, Any]:
        from homeserver.handlers.messages import EventFilter

        await self.room(room_id)
        flt = EventFilter(filter_json)
        backwards = direction == "b"
        current = self.core.streams["events"].current()
        pos = parse_position(from_token) if from_token else (RoomPosition(None, current) if backwards else RoomPosition(0, 0))
        to_pos = parse_position(to_token) if to_token else None
        rows = await self.core.event_store.paginate(room_id, pos, backwards, limit, to_pos)
        rows = [r for r in rows if r.stream_ordering <= current]
        chunk = [r for r in rows if flt.check(r)]
        out: dict[str, Any] = {"chunk": await self.core.event_formatter.format(chunk), "start": pos.render()}
        if len(rows) == limit and rows:
            edge = before if backwards else after
            out["end"] = edge(rows[-1].topological_ordering, rows[-1].stream_ordering).render()
        return out

    async def context(self, room_id: str, event_id: str, limit: int) -> dict[str, Any]:
        await self.room(room_id)
        row = await self.core.event_store.get_event(event_id)
        if row is None or row.room_id != room_id:
            raise NotFound("Event not found")
        before_n = limit // 2
        after_n = limit - before_n
        key = (row.topological_ordering, row.stream_ordering)
        events_before = await self.core.event_store.paginate(room_id, before(*key), True, before_n) if before_n else []
        events_after = await self.core.event_store.paginate(room_id, after(*key), False, after_n) if after_n else []
        fmt = self.core.event_formatter
        start_row = events_before[-1] if events_before else row
        end_row = events_after[-1] if events_after else row
        ids = await self.core.state_store.get_state_ids(end_row.state_after)
        state_rows = await self.core.event_store.get_events_as_list(list(ids.values()))
        return {"event": await fmt.format_one(row), "events_before": await fmt.format(events_before),
                "events_after": await fmt.format(events_after),
                "start": before(start_row.topological_ordering, start_row.stream_ordering).render(),
                "end": after(end_row.topological_ordering, end_row.stream_ordering).render(),
                "state": await fmt.format(state_rows)}

    async def timestamp_to_event(self, room_id: str, ts: int, direction: str) -> dict[str, Any]:
        await self.room(room_id)
        row = await self.core.event_store.get_event_near_ts(room_id, ts, direction == "f")
        if row is None:
            raise NotFound("Unable to find event from %d in direction %s" % (ts, direction))
        return {"event_id": row.event_id, "origin_server_ts": row.origin_server_ts}

    async def fetch_event(self, event_id: str) -> dict[str, Any]:
        row = await self.core.event_store.get_event(event_id)
        if row is None:
            raise NotFound("Event not found")
        return {"event": await self.core.event_formatter.format_one(row)}

    # ---- forward extremities ----
    async def forward_extremities(self, room_id: str) -> dict[str, Any]:
        await self.room(room_id)
        results = await self.queries.forward_extremities(room_id)
        for r in results:
            r.pop("stream_ordering", None)
        return {"count": len(results), "results": results}

    async def delete_forward_extremities(self, room_id: str) -> dict[str, Any]:
        """Keep only the deepest extremity (the next event will point at it), under the room's persist lock."""
        await self.room(room_id)
        async with self.core.persister.linearizer.queue(room_id):
            results = await self.queries.forward_extremities(room_id)
            if len(results) <= 1:
                return {"deleted": 0}
            best = max(results, key=lambda r: (r["depth"] or 0, r["stream_ordering"] or 0))
            deleted = await self.queries.delete_forward_extremities_except(room_id, [best["event_id"]])
            self.core.room_cache.invalidate(room_id)
        return {"deleted": deleted}

    # ---- make room admin / join ----
    async def make_room_admin(self, requester_id: str, room_id: str, user_id: str | None) -> None:
        target = self.local_user(user_id if user_id is not None else requester_id)
        snap = await self.room(room_id)
        creation = self.core.event_creation
        from homeserver.handlers.event_creation import Draft

        draft = Draft.of(snap)
        keys = [("m.room.power_levels", ""), ("m.room.create", "")]
        auth = {k: ev for k in keys if (ev := await creation.state_event(draft, k)) is not None}
        pls = PowerLevels(auth, snap.version)
        best: tuple[float, str] | None = None
        for user in snap.joined():
            if user.endswith(":" + self.server_name):
                level = pls.user_level(user)
                if best is None or level > best[0]:
                    best = (level, user)
        if best is None:
            raise MatrixError(400, Codes.UNKNOWN, "No local admin user in room")
        admin_level, admin_user = best
        pl_event = auth.get(("m.room.power_levels", ""))
        content: dict[str, Any] = thaw(pl_event.content) if pl_event is not None else {}
        users = content.setdefault("users", {})
        if not isinstance(users, dict):
            raise MatrixError(400, Codes.UNKNOWN, "The room's power levels are malformed")
        if admin_level == float("inf"):  # a room creator (v12): grant the highest explicit level
            admin_level = max([v for v in users.values() if isinstance(v, int)] + [100])
        if pls.user_level(target) < admin_level:
            users[target] = int(admin_level)
            await creation.send(room_id, admin_user, "m.room.power_levels", content, state_key="")
        if snap.membership_of(target) != "join":
            rule = await creation.state_content(draft, ("m.room.join_rules", ""))
            if (rule or {}).get("join_rule") != "public" and snap.membership_of(target) != "invite":
                await self.core.membership.update(admin_user, target, room_id, "invite")

    async def join(self, requester_id: str, room_id_or_alias: str, user_id: str) -> dict[str, Any]:
        target = self.local_user(user_id)
        row = await self.core.admin_users.users.get_user(target)
        if row is None or row.deactivated:
            raise NotFound("User not found")
        room_id = await self.core.membership.resolve_room(room_id_or_alias)
        snap = await self.room(room_id)
        if snap.membership_of(target) == "join":
            return {"room_id": room_id}
        from homeserver.handlers.event_creation import Draft

        rule = await self.core.event_creation.state_content(Draft.of(snap), ("m.room.join_rules", ""))
        if (rule or {}).get("join_rule") != "public" and snap.membership_of(target) != "invite":
            if snap.membership_of(requester_id) != "join":
                raise Forbidden("The server admin is not in the room and it is not public")
            await self.core.membership.update(requester_id, target, room_id, "invite")
        await self.core.membership.update(target, target, room_id, "join")
        return {"room_id": room_id}

    # ---- purge history ----
    async def start_purge_history(self, room_id: str, event_id: str | None, body: PurgeHistoryBody) -> dict[str, Any]:
        await self.room(room_id)
        delete_local = body.delete_local_events
        event_id = event_id or body.purge_up_to_event_id
        ts = body.purge_up_to_ts
        if event_id is not None:
            row = await self.core.event_store.get_event(event_id)
            if row is None or row.room_id != room_id:
                raise MatrixError(404, Codes.NOT_FOUND, "Event not found in this room")
            point = (row.topological_ordering, row.stream_ordering)
        elif ts is not None:
            row = await self.core.event_store.get_event_near_ts(room_id, ts, True)
            if row is None:  # everything is older than ts: purge up to the newest event
                latest = await self.core.event_store.get_latest_event_at(room_id, self.core.streams["events"].current())
                if latest is None:
                    raise NotFound("The room has no events")
                point = (latest.topological_ordering, latest.stream_ordering + 1)
            else:
                point = (row.topological_ordering, row.stream_ordering)
        else:
            raise MatrixError(400, Codes.BAD_JSON, "must specify purge_up_to_event_id or purge_up_to_ts")
        purge_id = secrets.token_urlsafe(12)
        await self.tasks.create(purge_id, "purge_history", room_id, self.clock.time_msec())
        self._spawn(purge_id, self._purge_history(purge_id, room_id, point, delete_local))
        return {"purge_id": purge_id}

    async def _purge_history(self, purge_id: str, room_id: str, point: tuple[int, int], delete_local: bool) -> None:
        deleted = 0
        try:
            keep = {r["event_id"] for r in await self.queries.forward_extremities(room_id)}
            while True:
                ids = await self.queries.purge_history_batch(room_id, point[0], point[1], ":" + self.server_name,
                                                             delete_local, keep, PURGE_BATCH)
                if not ids:
                    break
                deleted += len(ids)
                self.core.event_store.invalidate(ids)
                await self.clock.sleep(0)  # one short transaction per batch; the server keeps serving between them
            await self.tasks.finish(purge_id, "complete", self.clock.time_msec(), {"deleted_events": deleted})
        except Exception as e:
            logger.exception("purging history of %s failed", room_id)
            await self.tasks.finish(purge_id, "failed", self.clock.time_msec(), {"deleted_events": deleted}, str(e))

    async def purge_status(self, purge_id: str) -> dict[str, Any]:
        task = await self.tasks.get(purge_id)
        if task is None or task["action"] != "purge_history":
            raise NotFound("purge id '%s' not found" % purge_id)
        out: dict[str, Any] = {"status": task["status"]}
        if task["error"]:
            out["error"] = task["error"]
        return out

    # ---- redact all of a user's events ----
    async def start_redact_user(self, requester_id: str, user_id: str, body: RedactUserBody) -> dict[str, Any]:
        try:
            UserID.parse(user_id)
        except InvalidId as e:
            raise InvalidParam(f"Invalid user id: {e}") from None
        rooms, reason, limit = list(body.rooms), body.reason, body.limit
        if not rooms:
            rooms = sorted(await self.core.room_store.get_rooms_for_user(user_id, ("join", "leave", "ban", "invite", "knock")))
        redact_id = secrets.token_urlsafe(12)
        await self.tasks.create(redact_id, "redact_user", user_id, self.clock.time_msec())
        self._spawn(redact_id, self._redact_user(redact_id, requester_id, user_id, rooms, reason, limit))
        return {"redact_id": redact_id}

    async def _redact_user(self, redact_id: str, requester_id: str, user_id: str, rooms: list[str], reason: str | None,
                           limit: int) -> None:
        failed: dict[str, str] = {}
        done = 0
        local = user_id.endswith(":" + self.server_name)
        try:
            for room_id in rooms:
                after = 0
                while done < limit:
                    batch = await self.queries.user_event_ids(user_id, room_id, after, min(REDACT_BATCH, limit - done))
                    if not batch:
                        break
                    for stream, event_id in batch:
                        after = stream
                        content = {"reason": reason} if reason else {}
                        content["redacts"] = event_id
                        sender = user_id if local else requester_id
                        try:
                            await self.core.event_creation.send(room_id, sender, "m.room.redaction", content, redacts=event_id)
                            done += 1
                        except Exception as e:  # one event failing must not stop the rest
                            failed[event_id] = getattr(e, "msg", None) or str(e)
            await self.tasks.finish(redact_id, "complete", self.clock.time_msec(), {"failed_redactions": failed, "redacted": done})
        except Exception as e:
            logger.exception("redacting %s's events failed", user_id)
            await self.tasks.finish(redact_id, "failed", self.clock.time_msec(), {"failed_redactions": failed}, str(e))

    async def redact_status(self, redact_id: str) -> dict[str, Any]:
        task = await self.tasks.get(redact_id)
        if task is None or task["action"] != "redact_user":
            raise NotFound("redact id '%s' not found" % redact_id)
        result = task["result"] or {}
        out: dict[str, Any] = {"status": task["status"], "failed_redactions": result.get("failed_redactions", {})}
        if task["error"]:
            out["error"] = task["error"]
        return out

    # ---- media in a room ----
    async def room_media(self, room_id: str) -> dict[str, Any]:
        await self.room(room_id)
        local: list[str] = []
        remote: list[str] = []
        seen: set[str] = set()
        after = 0
        while True:
            batch = await self.queries.room_event_json_batch(room_id, after, MEDIA_SCAN_BATCH)
            if not batch:
                break
            for stream, raw in batch:
                after = stream
                for m in _MXC_RE.finditer(raw):
                    uri = m.group(0)
                    if uri not in seen:
                        seen.add(uri)
                        (local if m.group(1) == self.server_name else remote).append(uri)
        return {"local": local, "remote": remote}

    async def quarantine_room_media(self, requester_id: str, room_id: str) -> dict[str, Any]:
        media = await self.room_media(room_id)
        repo = getattr(self.core, "media_repository", None)
        if repo is None:
            raise MatrixError(400, Codes.UNKNOWN, "This process serves no media")
        count = 0
        for uri in media["local"] + media["remote"]:
            origin, media_id = uri[len("mxc://"):].split("/", 1)
            if await repo.store.set_quarantine(origin, media_id, origin == self.server_name, requester_id):
                count += 1
        return {"num_quarantined": count}

    # ---- room shutdown: move local members to a new room ----
    async def shutdown_members(self, room_id: str, requester_id: str, options: dict[str, Any]) -> dict[str, Any]:
        """Remove local members (and optionally put them in a new room with a message). Returns Synapse's
        ``shutdown_room`` shape: kicked_users, failed_to_kick_users, local_aliases, new_room_id."""
        membership = self.core.membership
        new_room_user = options.get("new_room_user_id")
        new_room_id = None
        if new_room_user is not None:
            row = await self.core.admin_users.users.get_user(new_room_user)
            if row is None:
                await self.core.registration.create_account(new_room_user[1:].split(":", 1)[0], None)
            created = await self.core.room_creation.create_room(new_room_user, CreateRoomBody(
                preset="public_chat", name=options.get("room_name") or "Content Violation Notification",
                power_level_content_override={"users_default": -10}))
            new_room_id = created["room_id"]
            await self.core.event_creation.send(new_room_id, new_room_user, "m.room.message", {
                "msgtype": "m.text",
                "body": options.get("message") or "Sharing illegal content on this server is not permitted and rooms in"
                                                   " violation will be blocked."})
        kicked: list[str] = []
        failed: list[str] = []
        members = await self.core.room_store.get_members(room_id, ("join", "invite", "knock"))
        for user_id in sorted(members):
            if not user_id.endswith(":" + self.server_name) or user_id == new_room_user:
                continue
            try:
                await membership.update(user_id, user_id, room_id, "leave")
                if new_room_id is not None:
                    await membership.update(user_id, user_id, new_room_id, "join")
                kicked.append(user_id)
            except Exception:
                logger.warning("could not move %s out of %s", user_id, room_id, exc_info=True)
                failed.append(user_id)
        aliases = await self.core.alias_store.for_room(room_id)
        for alias in aliases:
            await self.core.alias_store.delete(alias)
            if new_room_id is not None:
                await self.core.alias_store.create(alias, new_room_id, new_room_user, self.clock.time_msec())
        return {"kicked_users": kicked, "failed_to_kick_users": failed, "local_aliases": aliases, "new_room_id": new_room_id}
