"""Messaging area: relations, bundled aggregations, threads, search, reports, redaction retention.

Runs after rooms and sync. Hooks it plugs into (see docs/messaging.md):
  core.persister.add_txn_writer     relation + search rows written in the event's own transaction;
                                    a redaction drops the target's rows and queues its content purge
  core.event_formatter.add_decorator bundled aggregations (unsigned.m.relations) on every served event
  core.event_creation.send_checks   M_DUPLICATE_ANNOTATION before a client event is built; the redact power level
                                    of redactions sent through /send (RedactionSendCheck)
Exposes: core.relations, core.relations_store (``thread_of(event_ids)`` for thread-aware receipts /
notifications), core.threads, core.search, core.reports, core.redaction_retention.
"""

from __future__ import annotations

import logging
from typing import Any

from homeserver.api.errors import InvalidParam
from homeserver.handlers.redaction import RedactionSendCheck
from homeserver.handlers.redaction_retention import (
    RedactionRetention,
    record_redaction_txn,
)
from homeserver.handlers.relations import THREAD, RelationsHandler, parse_relations
from homeserver.handlers.reports import ReportsHandler
from homeserver.handlers.search import SearchHandler
from homeserver.handlers.threads import ThreadsHandler
from homeserver.rest.admin.reports import AdminReportsServlet
from homeserver.rest.client.relations import RelationsServlet
from homeserver.rest.client.report import ReportServlet
from homeserver.rest.client.search import SearchServlet
from homeserver.rest.client.threads import ThreadsServlet
from storage.database import Txn
from storage.stores.redacted_content import redaction_applied_txn
from storage.stores.relations import RelationsStore
from storage.stores.reports import ReportStore
from storage.stores.search import SearchStore
from storage.stores.users import UserStore
from workers.core import Core
from workers.roles import Area

AREA = Area(
    "messaging",
    needs=("auth", "event_store", "event_formatter", "visibility", "persister", "event_creation", "state_store", "room_store",
           "room_state", "room_cache"),
    provides=("relations_store", "relations", "reports", "threads", "search", "redaction_retention"),
    uses=("receipts",),
)

logger = logging.getLogger(__name__)


def wire(core: Core) -> None:
    config = core.config
    db, clock = core.db, core.clock
    relations_store = RelationsStore(db)
    search_store = SearchStore(db, config.search.postgres_language)
    report_store = ReportStore(db)
    core.relations_store = relations_store

    relations = RelationsHandler(relations_store, clock, config.relations.bundle_annotations)
    reports = ReportsHandler(report_store, clock, config.reports.max_reason_length)
    reports.server_name = core.server_name
    core.relations = relations
    core.reports = reports

    auth = getattr(core, "auth", None)
    core.on_resource("client", ReportServlet(auth, reports).register)
    core.on_resource("admin", AdminReportsServlet(auth, reports).register)
    core.on_resource("client", RelationsServlet(auth, relations).register)

    events = getattr(core, "event_store", None)
    if events is None:  # rooms area not wired in this process
        return
    formatter, visibility, persister = core.event_formatter, core.visibility, core.persister

    # ---- writes in the persist transaction ----
    def txn_writer(txn: Txn, rows: list[Any]) -> None:
        now = clock.time_msec()
        search_store.index_events_txn(txn, rows)  # the batch at once; non-text events skipped early
        for row in rows:
            content = row.pdu.get("content")
            args = (row.event_id, row.room_id, row.sender, row.type, row.state_key, content, row.origin_server_ts,
                    row.topological_ordering, row.stream_ordering)
            relations_store.index_event_txn(txn, *args)
            if row.type == "m.room.redaction":
                target = row.pdu.get("redacts") or (content or {}).get("redacts")
                if not isinstance(target, str):
                    continue
                if not redaction_applied_txn(txn, target, row.room_id, row.event_id):
                    continue
                relations_store.on_redacted_txn(txn, target)
                search_store.delete_txn(txn, [target])
                record_redaction_txn(txn, target, now)

    persister.add_txn_writer(txn_writer)

    # ---- bundled aggregations on every served event ----
    async def fetch_rows(ids: Any) -> dict[str, Any]:
        return await events.get_events(list(ids))

    async def serialize(rows: list[Any], user_id: str | None) -> list[dict[str, Any]]:
        return await formatter.format(rows, user_id, decorate=False)

    async def can_see_event(user_id: str, room_id: str, event_id: str) -> bool:
        row = await events.get_event(event_id)
        return row is not None and bool(await visibility.filter(user_id, [row]))

    relations.fetch_rows = fetch_rows
    relations.serialize = serialize
    relations.filter_visible = visibility.filter
    relations.can_see_event = can_see_event
    formatter.add_decorator(relations.bundle)
    core.event_creation.send_checks.append(relations.check_new_event)

    # Redactions sent through /send (v1.18): the same rule as /redact (typed send check, homeserver/handlers/redaction.py)
    core.event_creation.send_checks.append(RedactionSendCheck(events, core.room_cache))

    # ---- threads, search ----
    threads = ThreadsHandler(relations_store, events, visibility, formatter)
    core.threads = threads
    core.on_resource("client", ThreadsServlet(auth, threads).register)
    search = SearchHandler(search_store, events, core.state_store, core.room_store, visibility, formatter,
                           core.room_state, core.streams["events"])
    core.search = search
    core.on_resource("client", SearchServlet(auth, search).register)

    # ---- reports: collaborators ----
    room_store = core.room_store

    async def is_joined(user_id: str, room_id: str) -> bool:
        return room_id in await room_store.get_rooms_for_user(user_id)

    async def room_exists(room_id: str) -> bool:
        return await room_store.get_room(room_id) is not None

    async def user_exists(user_id: str) -> bool:
        return await db.run("report_user_exists", UserStore.exists_txn, user_id)

    async def format_event(row: Any) -> dict[str, Any]:
        return (await formatter.format([row], None, decorate=False))[0]

    async def room_info(room_id: str) -> tuple[str | None, str | None]:
        snap = await core.room_cache.get(room_id)
        out: list[str | None] = []
        for key, field in ((("m.room.name", ""), "name"), (("m.room.canonical_alias", ""), "alias")):
            eid = snap.state.get(key)
            row = await events.get_event(eid) if eid else None
            value = row.content.get(field) if row is not None and row.redacted_by is None else None
            out.append(value if isinstance(value, str) else None)
        return out[0], out[1]

    reports.is_joined = is_joined
    reports.get_event = events.get_event
    reports.room_exists = room_exists
    reports.user_exists = user_exists
    reports.format_event = format_event
    reports.room_info = room_info

    # ---- redaction retention job ----
    retention = RedactionRetention(db, clock, config.retention.redacted_content_after, events.invalidate)
    core.redaction_retention = retention

    async def run_retention() -> None:
        n = await retention.run_once()
        if n:
            logger.info("purged the content of %d redacted events", n)

    interval = max(60.0, min(3600.0, config.retention.redacted_content_after / 1000 / 10))
    core.every("redacted_content_purge", run_retention, interval)

    # ---- thread-aware receipts: a threaded receipt must target an event of that thread ----
    receipts = getattr(core, "receipts", None)
    if receipts is not None and hasattr(receipts, "add_thread_check"):
        async def in_thread(event_id: str, thread_id: str) -> bool:
            if thread_id == "main":
                return event_id not in await relations_store.thread_of([event_id])
            return event_id == thread_id or (await relations_store.thread_of([event_id])).get(event_id) == thread_id

        receipts.add_thread_check(in_thread)

    _ = (InvalidParam, THREAD, parse_relations)
