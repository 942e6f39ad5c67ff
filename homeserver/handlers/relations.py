"""Event relationships: parsing ``m.relates_to``, validity rules, and bundled aggregations.

The functions at the top are pure (no I/O) and table-tested in ``tests/unit/messaging``.
:class:`RelationsHandler` is the thin shell: ``GET /relations``, the bundled-aggregation
decorator that every event-serving path calls, and the duplicate-annotation check.
See docs/messaging.md.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Iterable, Mapping, Sequence

from homeserver.api.errors import Codes, MatrixError, NotFound
from homeserver.types.room_position import RoomPosition, parse_optional
from storage.stores.relations import (  # the index owns the parse rules (storage may not import handlers)
    EDIT_CANDIDATES, ANNOTATION, LISTED_REL_TYPES, MAX_KEY_LENGTH, REFERENCE, REPLACE, REPLY, THREAD, Relation, parse_relations,
)

logger = logging.getLogger(__name__)
__all__ = ["ANNOTATION", "LISTED_REL_TYPES", "MAX_KEY_LENGTH", "REFERENCE", "REPLACE", "REPLY", "THREAD", "Relation",
           "parse_relations", "RelationsHandler"]

RECURSION_DEPTH = 3
EDIT_PAGE = 50       # edit candidates fetched per page when the newest ones are all invalid
MAX_EDIT_PAGES = 20  # bound on that search (1,000 older edits of one message)


def relation_of(event: Mapping[str, Any]) -> tuple[str, str] | None:
    """(rel_type, parent id) of a client/PDU event dict, if it has a rel_type relation."""
    for r in parse_relations(str(event.get("type", "")), event.get("content"), event.get("state_key")):
        if r.rel_type != REPLY:
            return r.rel_type, r.parent_id
    return None


# ---------------------------------------------------------------- validity rules


def is_valid_replacement(original: Mapping[str, Any], edit: Mapping[str, Any]) -> bool:
    """The spec's "validity of replacement events" rules, on client-format (or PDU) dicts."""
    if original.get("room_id") != edit.get("room_id") and original.get("room_id") and edit.get("room_id"):
        return False
    if original.get("sender") != edit.get("sender"):
        return False
    if "state_key" in original or "state_key" in edit:
        return False
    if original.get("type") != edit.get("type"):
        return False
    if relation_of(original) is not None and relation_of(original)[0] == REPLACE:  # type: ignore[index]
        return False
    content = edit.get("content")
    if not isinstance(content, Mapping):
        return False
    if edit.get("type") != "m.room.encrypted" and not isinstance(content.get("m.new_content"), Mapping):
        return False
    return True


def edit_sort_key(edit: Mapping[str, Any]) -> tuple[int, str]:
    """Most recent replacement: highest origin_server_ts, ties broken by the largest event id."""
    ts = edit.get("origin_server_ts")
    return (ts if isinstance(ts, int) else 0, str(edit.get("event_id", "")))


def latest_valid_edit(original: Mapping[str, Any], edits: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    if is_redacted(original):
        return None  # edits of a redacted event are never bundled
    valid = [e for e in edits if not is_redacted(e) and is_valid_replacement(original, e)]
    return max(valid, key=edit_sort_key) if valid else None


def is_redacted(event: Mapping[str, Any]) -> bool:
    unsigned = event.get("unsigned")
    return isinstance(unsigned, Mapping) and "redacted_because" in unsigned


def can_be_thread_root(root: Mapping[str, Any]) -> bool:
    """A thread root cannot itself be the child of a relation (threading module)."""
    return relation_of(root) is None


def annotation_counts(annotations: Iterable[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """Count (event type, key, sender) triples, one per sender per (type, key); biggest first.

    Duplicate annotations can still arrive over federation, so counting deduplicates.
    """
    seen: set[tuple[str, str, str]] = set()
    counts: dict[tuple[str, str], int] = {}
    first: dict[tuple[str, str], int] = {}
    for i, (etype, key, sender) in enumerate(annotations):
        if (etype, key, sender) in seen:
            continue
        seen.add((etype, key, sender))
        counts[(etype, key)] = counts.get((etype, key), 0) + 1
        first.setdefault((etype, key), i)
    ordered = sorted(counts, key=lambda k: (-counts[k], first[k]))
    return [{"type": t, "key": k, "count": counts[(t, k)]} for t, k in ordered]


def thread_summary(latest_event: dict[str, Any], count: int, participated: bool) -> dict[str, Any]:
    return {"latest_event": latest_event, "count": count, "current_user_participated": participated}


def strip_for_forwarding(content: Mapping[str, Any]) -> dict[str, Any]:
    """The content a client sends when forwarding a message into another room.

    Forwarding is client-side: the same content, minus the relationship (an edit, reply,
    reaction or thread link points at an event of the *source* room) and minus a reply
    fallback. Media (``url``/``file``/``info``) is kept: ``mxc://`` URIs are room-independent.
    """
    out = {k: v for k, v in content.items() if k not in ("m.relates_to", "m.new_content")}
    return out


# ---------------------------------------------------------------- pagination tokens


def encode_token(pos: RoomPosition) -> str:
    return pos.render()


def decode_token(token: str | None) -> RoomPosition | None:
    """A /relations or /threads token, a /messages token or a sync ``next_batch`` (all are positions)."""
    return parse_optional(token)


# ---------------------------------------------------------------- the shell

EventsFetcher = Callable[[Sequence[str]], Awaitable[dict[str, Any]]]
Serializer = Callable[[list[Any], str], Awaitable[list[dict[str, Any]]]]
VisibilityCheck = Callable[[str, str, Any], Awaitable[bool]]  # (user_id, room_id, row) -> visible


class RelationsHandler:
    """``core.relations``: GET /relations and bundled aggregations.

    Collaborators are passed in as callables so this module never imports the rooms area:
    ``fetch_rows(event_ids) -> {event_id: row}`` (rows with ``.pdu``, ``.room_id``, ``.event_id``...),
    ``serialize(rows, user_id) -> client dicts`` (the rooms serializer, *without* aggregations),
    ``filter_visible(user_id, rows) -> rows`` (history visibility).
    """

    def __init__(self, store: Any, clock: Any, bundle_annotations: bool = False, max_limit: int = 100) -> None:
        self.store = store
        self.clock = clock
        self.bundle_annotations = bundle_annotations
        self.max_limit = max_limit
        self.fetch_rows: Callable[[Sequence[str]], Awaitable[dict[str, Any]]] | None = None
        self.serialize: Callable[[list[Any], str | None], Awaitable[list[dict[str, Any]]]] | None = None
        self.filter_visible: Callable[[str, list[Any]], Awaitable[list[Any]]] | None = None
        self.can_see_event: Callable[[str, str, str], Awaitable[bool]] | None = None

    # ---- send-time check (called by the event-creation path before persisting) ----
    async def check_new_event(self, room_id: str, sender: str, event_type: str, content: Any) -> None:
        """Reject a relation to an event of another room (400) and a second identical annotation from the same
        user (400 M_DUPLICATE_ANNOTATION)."""
        rels = parse_relations(event_type, content)
        if rels and self.fetch_rows is not None:
            parents = await self.fetch_rows({rel.parent_id for rel in rels})
            if any(row.room_id != room_id for row in parents.values()):
                raise MatrixError(400, Codes.INVALID_PARAM, "Relations must be in the same room")
        for rel in rels:
            if rel.rel_type == ANNOTATION and rel.key is not None:
                if await self.store.has_annotation(rel.parent_id, sender, event_type, rel.key):
                    raise MatrixError(400, Codes.DUPLICATE_ANNOTATION, "You already sent this annotation")

    # ---- GET /rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]] ----
    async def get_relations(
        self, user_id: str, room_id: str, event_id: str, rel_type: str | None, event_type: str | None,
        from_token: str | None, to_token: str | None, limit: int, direction: str, recurse: bool | None,
    ) -> dict[str, Any]:
        assert self.fetch_rows is not None and self.serialize is not None
        parent = (await self.fetch_rows([event_id])).get(event_id)
        if parent is None or parent.room_id != room_id:
            raise NotFound("Event not found")
        if self.can_see_event is not None and not await self.can_see_event(user_id, room_id, event_id):
            raise NotFound("Event not found")
        limit = max(1, min(limit, self.max_limit))
        frm, to = decode_token(from_token), decode_token(to_token)
        depth = RECURSION_DEPTH if recurse else 1
        rows_meta, next_key = await self.store.get_children(
            room_id, event_id, rel_type, event_type, frm, to, limit, direction == "f", depth,
        )
        rows_by_id = await self.fetch_rows([m.event_id for m in rows_meta])
        rows = [rows_by_id[m.event_id] for m in rows_meta if m.event_id in rows_by_id]
        if self.filter_visible is not None:
            rows = await self.filter_visible(user_id, rows)
        chunk = await self.serialize(rows, user_id)
        out: dict[str, Any] = {"chunk": chunk}
        if next_key is not None:
            out["next_batch"] = encode_token(next_key)
        if from_token is not None:
            out["prev_batch"] = from_token
        if recurse is not None:
            out["recursion_depth"] = depth if recurse else 1
        return out

    # ---- bundled aggregations ----
    async def bundle(self, events: list[dict[str, Any]], user_id: str | None) -> list[dict[str, Any]]:
        """Add ``unsigned.m.relations`` to client-format events (in place; returns the list).

        This is the event-serialization decorator every serving path runs (sync, messages,
        context, event, search, relations, threads). Aggregations are only computed for
        events that are parents of something (one indexed query for the page).
        """
        if not events:
            return events
        ids = [e["event_id"] for e in events if isinstance(e.get("event_id"), str)]
        try:
            summary = await self.store.get_aggregations(ids, user_id, self.bundle_annotations)
        except Exception:  # aggregations are decoration: never fail the page for them
            logger.exception("bundled aggregations failed")
            return events
        if not summary.has_any():
            return events
        wanted: set[str] = set(summary.edit_ids()) | set(summary.thread_latest_ids())
        rows = await self.fetch_rows(sorted(wanted)) if (wanted and self.fetch_rows) else {}
        if rows and self.filter_visible is not None:
            # an edit or thread reply the reader may not see (sent after they left, say) is never bundled
            visible = {r.event_id for r in await self.filter_visible(user_id, list(rows.values()))}
            rows = {k: v for k, v in rows.items() if k in visible}
        serialized: dict[str, dict[str, Any]] = {}
        if rows and self.serialize is not None:
            order = sorted(rows)
            for eid, ev in zip(order, await self.serialize([rows[e] for e in order], user_id)):
                serialized[eid] = ev
        for ev in events:
            await self._find_older_valid_edit(ev, summary, serialized, user_id)
            rel = self._aggregate_one(ev, summary, serialized)
            if rel:
                ev.setdefault("unsigned", {})["m.relations"] = rel
        # latest thread events carry their own edit (one level only)
        latest = [s for s in serialized.values() if s["event_id"] in set(summary.thread_latest_ids())]
        if latest:
            sub = await self.store.get_aggregations([s["event_id"] for s in latest], user_id, False)
            for s in latest:
                r = self._aggregate_one(s, sub, {}, only_edits=True)
                if r:
                    s.setdefault("unsigned", {})["m.relations"] = r
        return events

    async def _find_older_valid_edit(self, ev: dict[str, Any], summary: Any, serialized: dict[str, dict[str, Any]],
                                     user_id: str | None) -> None:
        """When every fetched edit candidate of ``ev`` is invalid (e.g. no ``m.new_content``), page through
        older candidates until a valid one is found, so the bundled edit is the newest *valid* one of all
        (bounded: MAX_EDIT_PAGES pages)."""
        eid = ev.get("event_id")
        edits = summary.edits.get(eid) or []
        more = getattr(self.store, "more_edit_candidates", None)
        if (len(edits) < EDIT_CANDIDATES or more is None or self.fetch_rows is None or self.serialize is None
                or is_redacted(ev)):
            return
        seen = [serialized[e] for e in edits if e in serialized]
        if latest_valid_edit(ev, seen) is not None or len(seen) != len(edits):
            return
        last = min(seen, key=edit_sort_key)
        for _ in range(MAX_EDIT_PAGES):
            ids = await more(eid, edit_sort_key(last), EDIT_PAGE)
            if not ids:
                return
            rows = await self.fetch_rows(ids)
            order = [i for i in ids if i in rows]
            page = await self.serialize([rows[i] for i in order], user_id)
            found = latest_valid_edit(ev, page)
            if found is not None:
                serialized[found["event_id"]] = found
                summary.edits[eid] = [found["event_id"]]
                return
            if len(ids) < EDIT_PAGE or not page:
                return
            last = min(page, key=edit_sort_key)

    def _aggregate_one(self, ev: dict[str, Any], summary: Any, serialized: dict[str, dict[str, Any]],
                       only_edits: bool = False) -> dict[str, Any]:
        eid = ev.get("event_id")
        out: dict[str, Any] = {}
        edits = summary.edits.get(eid, [])
        if edits:
            candidates = [serialized.get(e) for e in edits]
            edit = latest_valid_edit(ev, [c for c in candidates if c is not None])
            if edit is not None:
                out[REPLACE] = edit
        if only_edits or is_redacted(ev):
            return out if not is_redacted(ev) else {}
        thread = summary.threads.get(eid)
        if thread is not None and can_be_thread_root(ev):
            latest_id, count, participated = thread
            latest = serialized.get(latest_id)
            if latest is not None and count > 0:
                participated = participated or ev.get("sender") == summary.user_id
                out[THREAD] = thread_summary(latest, count, participated)
        refs = summary.references.get(eid)
        if refs:
            out[REFERENCE] = {"chunk": [{"event_id": r} for r in refs]}
        if self.bundle_annotations:
            ann = summary.annotations.get(eid)
            if ann:
                out[ANNOTATION] = {"chunk": annotation_counts(ann)}
        return out
