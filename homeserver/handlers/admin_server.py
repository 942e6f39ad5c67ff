"""Server-wide admin operations: server notices, statistics, background jobs, scheduled tasks, version."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from twisted.internet import defer

from homeserver.api.errors import Codes, MatrixError, NotFound
from homeserver.api.models.admin import ServerNoticeBody
from homeserver.api.models.rooms import CreateRoomBody
from homeserver.types.ids import UserID
from storage.stores.admin_ops import AdminQueries, AdminTaskStore
from storage.stores.server_facts import ServerFactsStore

logger = logging.getLogger(__name__)

BACKGROUND_JOBS = ("populate_stats_process_rooms", "regenerate_directory")
ENABLED_FACT = "admin_background_updates_enabled"
SERVER_NOTICE_TAG = "m.server_notice"


def server_version() -> str:
    try:
        from importlib.metadata import version

        return version("sup-homeserver")
    except Exception:  # not installed as a distribution (running from a checkout)
        return "0.1.0"


class ServerNotices:
    """Notices from the server to a local user: sent by a system user into one private room per user."""

    def __init__(self, core: Any, queries: AdminQueries, localpart: str, display_name: str, room_name: str) -> None:
        self.core = core
        self.server_name: str = core.server_name
        self.queries = queries
        self.system_user = f"@{localpart}:{self.server_name}"
        self.localpart = localpart
        self.display_name = display_name
        self.room_name = room_name

    async def _ensure_system_user(self) -> None:
        if await self.core.admin_users.users.get_user(self.system_user) is None:
            try:
                await self.core.registration.create_account(self.localpart, None, displayname=self.display_name,
                                                            user_type="support")
            except MatrixError as e:
                if e.errcode != Codes.USER_IN_USE:
                    raise

    async def _notice_room(self, user_id: str) -> str:
        room_id = await self.queries.get_notice_room(user_id)
        if room_id is not None:
            room = await self.core.room_store.get_room(room_id)
            if room is not None and not room["deleted"]:
                snap = await self.core.room_cache.get(room_id)
                if snap.membership_of(self.system_user) == "join":
                    if snap.membership_of(user_id) not in ("join", "invite"):
                        await self.core.membership.update(self.system_user, user_id, room_id, "invite")
                    return room_id
        created = await self.core.room_creation.create_room(self.system_user, CreateRoomBody(
            preset="private_chat", name=self.room_name, invite=[user_id],
            # only the system user may speak: the notices room is read-only for its recipient
            power_level_content_override={"users_default": -10, "events_default": 0},
        ))
        room_id = created["room_id"]
        await self.queries.set_notice_room(user_id, room_id, self.core.clock.time_msec())
        return room_id

    async def send(self, body: ServerNoticeBody, txn_id: str | None, requester: Any) -> dict[str, Any]:
        user_id, content, event_type, state_key = body.user_id, body.content, body.type, body.state_key
        if UserID.parse(user_id).domain != self.server_name:
            raise MatrixError(400, Codes.UNKNOWN, "Server notices can only be sent to local users")
        row = await self.core.admin_users.users.get_user(user_id)
        if row is None or row.deactivated:
            raise NotFound("User not found")
        if user_id == self.system_user:
            raise MatrixError(400, Codes.UNKNOWN, "Cannot send a server notice to the server notices user")
        await self._ensure_system_user()
        room_id = await self._notice_room(user_id)
        client_txn = None
        if txn_id is not None:
            from storage.persistence.event_persister import ClientTxn

            device = requester.device_id or f"_token_{requester.access_token_id}"
            client_txn = ClientTxn(requester.user_id, device, f"server_notice:{user_id}:{txn_id}")
        event_id, _ = await self.core.event_creation.send(room_id, self.system_user, event_type, content,
                                                          state_key=state_key, client_txn=client_txn)
        return {"event_id": event_id}

    async def on_join(self, user_id: str, room_id: str) -> None:
        """Tag the notices room for its recipient so clients show it as such."""
        if await self.queries.get_notice_room(user_id) == room_id:
            handler = self.core.account_data
            tags = (await handler.get_tags(user_id, user_id, room_id))["tags"]
            if SERVER_NOTICE_TAG not in tags:
                await handler.set_tag(user_id, user_id, room_id, SERVER_NOTICE_TAG, {"order": 0.5})


class ServerAdmin:
    """Statistics, background jobs and the scheduled-task list."""

    def __init__(self, core: Any, queries: AdminQueries, tasks: AdminTaskStore) -> None:
        self.core = core
        self.queries = queries
        self.tasks = tasks
        self._running: dict[str, defer.Deferred[Any]] = {}
        self._room_sizes: list[dict[str, Any]] | None = None

    # ---- statistics ----
    async def user_media_statistics(self, order_by: str, direction: str, offset: int, limit: int, from_ts: int | None,
                                    until_ts: int | None, search_term: str | None) -> dict[str, Any]:
        if order_by not in ("user_id", "displayname", "media_count", "media_length"):
            raise MatrixError(400, Codes.INVALID_PARAM, "Unknown value for order_by")
        if direction not in ("f", "b"):
            raise MatrixError(400, Codes.INVALID_PARAM, "Unknown direction: dir must be f or b")
        if from_ts is not None and until_ts is not None and until_ts < from_ts:
            raise MatrixError(400, Codes.INVALID_PARAM, "Query parameter until_ts must be greater than from_ts.")
        if search_term is not None and search_term == "":
            raise MatrixError(400, Codes.INVALID_PARAM, "Query parameter search_term cannot be an empty string")
        users, total = await self.queries.user_media_statistics(order_by, direction == "b", offset, limit, from_ts, until_ts,
                                                                search_term)
        out: dict[str, Any] = {"users": users, "total": total}
        if offset + len(users) < total:
            out["next_token"] = offset + len(users)
        return out

    async def room_sizes(self) -> dict[str, Any]:
        if self._room_sizes is None:
            self._room_sizes = await self.queries.room_sizes()
        return {"rooms": self._room_sizes}

    # ---- background jobs ----
    async def enabled(self) -> bool:
        return await ServerFactsStore(self.core.db).get(ENABLED_FACT) != "false"

    async def set_enabled(self, enabled: bool) -> None:
        value = "true" if enabled else "false"
        await ServerFactsStore(self.core.db).set(ENABLED_FACT, value)

    async def status(self) -> dict[str, Any]:
        current: dict[str, Any] = {}
        for task in await self.tasks.list(status="active", limit=100):
            if task["action"] in BACKGROUND_JOBS:
                result = task["result"] or {}
                duration = max(1, self.core.clock.time_msec() - task["started_ts"])
                items = int(result.get("items", 0))
                current["main"] = {"name": task["action"], "total_item_count": items, "total_duration_ms": duration,
                                   "average_items_per_ms": items / duration}
        return {"enabled": await self.enabled(), "current_updates": current}

    async def start_job(self, job: str) -> None:
        if job not in BACKGROUND_JOBS:
            raise MatrixError(400, Codes.UNKNOWN, f"Invalid job_name: {job}")
        if not await self.enabled():
            raise MatrixError(400, Codes.UNKNOWN, "Background updates are disabled")
        if await self.tasks.list(action=job, status="active", limit=1):
            raise MatrixError(400, Codes.UNKNOWN, "Job %s is already in queue of background updates." % job)
        task_id = secrets.token_urlsafe(12)
        await self.tasks.create(task_id, job, "server", self.core.clock.time_msec())
        d = defer.ensureDeferred(self._run_job(task_id, job))
        self._running[task_id] = d
        d.addBoth(lambda r: (self._running.pop(task_id, None), r)[1])

    async def wait_all(self) -> None:
        for d in list(self._running.values()):
            await d

    async def _run_job(self, task_id: str, job: str) -> None:
        items = 0
        try:
            if job == "regenerate_directory":
                from storage.stores.profiles import ProfileStore

                for user_id in await self.queries.all_local_user_ids():
                    await self.core.db.run("refresh_directory", ProfileStore.refresh_directory_txn, user_id)
                    items += 1
                    await self.core.clock.sleep(0)
            else:  # populate_stats_process_rooms: recompute the room statistics snapshot
                self._room_sizes = await self.queries.room_sizes()
                items = len(await self.queries.room_ids_with_events())
            await self.tasks.finish(task_id, "complete", self.core.clock.time_msec(), {"items": items})
        except Exception as e:
            logger.exception("background job %s failed", job)
            await self.tasks.finish(task_id, "failed", self.core.clock.time_msec(), {"items": items}, str(e))

    # ---- scheduled tasks ----
    async def scheduled_tasks(self, action: str | None, resource_id: str | None, status: str | None,
                              max_timestamp: int | None) -> dict[str, Any]:
        if status is not None and status not in ("scheduled", "active", "complete", "failed"):
            raise MatrixError(400, Codes.INVALID_PARAM, "Unknown status")
        rows = await self.tasks.list(action=action, resource_id=resource_id, status=status, max_ts=max_timestamp)
        return {"scheduled_tasks": [{"id": r["id"], "action": r["action"], "status": r["status"],
                                     "timestamp_ms": r["timestamp_ms"], "resource_id": r["resource_id"],
                                     "result": r["result"], "error": r["error"]} for r in rows]}
