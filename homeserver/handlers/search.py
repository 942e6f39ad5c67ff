"""``POST /search`` over ``room_events`` (see docs/search.md).

The request is validated once here; the engine-neutral :class:`SearchStore` finds candidates
inside the rooms the user is (or was) in — bounded at the leave for rooms they left — and the
rooms area's visibility filter then drops anything history visibility hides. Results are
serialized through the shared formatter, so they carry bundled aggregations too.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any

from homeserver.api.errors import InvalidParam, MatrixError
from homeserver.api.models.search import MAX_CONTEXT, RoomEventsBody, SearchBody
from homeserver.sync.filter import EventFilter
from homeserver.types import room_position
from storage.stores.search import RoomScope, SearchStore, query_terms

DEFAULT_LIMIT = 10
MAX_LIMIT = 100
MAX_ROUNDS = 5  # refills when visibility hides candidates
COUNT_EXACT_MAX = 1000  # up to this many matches, ``count`` is exact after the visibility filter
_WORD_RE = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class RoomEventsCriteria:
    search_term: str
    keys: tuple[str, ...]
    filter: EventFilter
    order_by: str
    before_limit: int
    after_limit: int
    include_profile: bool
    want_context: bool
    include_state: bool
    group_by: tuple[str, ...]


def criteria(body: RoomEventsBody) -> RoomEventsCriteria:
    """The search criteria of a validated ``room_events`` body (its filter parsed by the filter module)."""
    ctx = body.event_context
    return RoomEventsCriteria(
        body.search_term, tuple(body.keys), EventFilter.parse(body.filter, "room_events.filter"), body.order_by,
        min(ctx.before_limit, MAX_CONTEXT) if ctx else 0, min(ctx.after_limit, MAX_CONTEXT) if ctx else 0,
        ctx.include_profile if ctx else False, ctx is not None, body.include_state, body.group_by)


@dataclass(frozen=True)
class Batch:
    """Where a search page continues: rank ``offset`` / recent ``stream`` bound, the visible ``count`` computed on
    the first page (carried so later pages need not recount), and the group (``room_id``/``sender``, value) a
    group's own ``next_batch`` restricts the search to."""

    offset: int = 0
    stream: int | None = None
    count: int | None = None
    group: tuple[str, str] | None = None


_BATCH_RE = re.compile(r"([kr])(\d{1,9})_(\d{1,18})(?:_c(\d{1,9}))?(?:_([gu])([A-Za-z0-9_-]{1,700}))?")
_GROUP_TAG = {"room_id": "g", "sender": "u"}


def encode_batch(order_by: str, offset: int, stream: int, count: int | None = None,
                 group: tuple[str, str] | None = None) -> str:
    token = f"{'k' if order_by == 'rank' else 'r'}{offset}_{stream}"
    if count is not None:
        token += f"_c{count}"
    if group is not None:
        token += "_" + _GROUP_TAG[group[0]] + base64.urlsafe_b64encode(group[1].encode("utf-8")).decode("ascii").rstrip("=")
    return token


def decode_batch(token: str | None, order_by: str) -> Batch:
    """The position of a next_batch token of the same ordering (an overall or a group token)."""
    if token is None:
        return Batch()
    m = _BATCH_RE.fullmatch(token)
    if m is None or m.group(1) != ("k" if order_by == "rank" else "r"):
        raise InvalidParam("Invalid next_batch token for this search")
    group = None
    if m.group(5):
        raw = m.group(6)
        try:
            value = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            raise InvalidParam("Invalid next_batch token for this search") from None
        group = ("room_id" if m.group(5) == "g" else "sender", value)
    return Batch(int(m.group(2)), int(m.group(3)), int(m.group(4)) if m.group(4) else None, group)


def highlights(terms: list[str], texts: list[str]) -> list[str]:
    """The query words plus the words of the results that they matched by prefix/stem ("martian" → "martians")."""
    out = dict.fromkeys(terms)
    stems = [t[: max(3, len(t) - 2)] for t in terms]
    for text in texts:
        for w in _WORD_RE.findall(text):
            lw = w.lower()
            if any(lw.startswith(s) for s in stems) and len(out) < 50:
                out.setdefault(lw, None)
    return list(out)


class SearchHandler:
    def __init__(self, store: SearchStore, events: Any, state: Any, room_store: Any, visibility: Any, formatter: Any,
                 room_state: Any, stream: Any) -> None:
        self.store = store
        self.events = events
        self.state = state
        self.room_store = room_store
        self.visibility = visibility
        self.formatter = formatter
        self.room_state = room_state
        self.stream = stream

    async def _scopes(self, user_id: str, flt: EventFilter) -> list[RoomScope]:
        rooms = await self.room_store.get_rooms_for_user_at(user_id, self.stream.current())
        scopes = []
        for room_id, (membership, _event_id, stream) in rooms.items():
            if not flt.allows_room(room_id):
                continue
            if membership == "join":
                scopes.append(RoomScope(room_id))
            elif membership in ("leave", "ban"):
                scopes.append(RoomScope(room_id, int(stream)))
        return scopes

    async def search(self, user_id: str, device_id: str | None, body: SearchBody, next_batch: str | None) -> dict[str, Any]:
        room_events = body.search_categories.room_events
        if room_events is None:
            return {"search_categories": {}}
        crit = criteria(room_events)
        batch = decode_batch(next_batch, crit.order_by)
        offset, stream_bound = batch.offset, (batch.stream if next_batch is not None else None)
        flt = crit.filter
        limit = min(flt.limit or DEFAULT_LIMIT, MAX_LIMIT)
        scopes = await self._scopes(user_id, flt)
        senders = flt.senders
        if batch.group is not None:  # a group's own next_batch: only that room's / sender's results
            kind, value = batch.group
            if kind == "room_id":
                scopes = [sc for sc in scopes if sc.room_id == value]
            else:
                senders = [value] if senders is None or value in senders else []
        query = dict(senders=senders, not_senders=flt.not_senders)
        rows: list[Any] = []
        ranks: dict[str, float] = {}
        raw_count = 0
        exhausted = False
        scanned = shown = 0  # hits looked at / kept on this page (for the count estimate of huge result sets)
        for _ in range(MAX_ROUNDS):
            after = (0.0, stream_bound) if stream_bound is not None else None
            hits, raw_count = await self.store.search(
                scopes, crit.search_term, crit.keys, crit.order_by, limit - len(rows) + 1, after=after, offset=offset,
                **query,
            )
            more = len(hits) > limit - len(rows)
            hits = hits[: limit - len(rows)]
            if hits:
                offset += len(hits)
                stream_bound = hits[-1].stream_ordering
            visible = await self._visible(user_id, hits, flt)
            for h in hits:
                ranks[h.event_id] = h.rank
            scanned += len(hits)
            shown += len(visible)
            rows.extend(visible)
            if not more:
                exhausted = True
                break
            if len(rows) >= limit:
                break
        events = await self.formatter.format(rows, user_id, device_id)
        if batch.count is not None:
            count = batch.count
        else:
            count = await self._visible_count(user_id, scopes, crit, raw_count, scanned, shown, query)
        results = [{"rank": ranks.get(e["event_id"], 0.0), "result": e} for e in events]
        if crit.want_context:
            by_id = {r.event_id: r for r in rows}
            for res in results:
                res["context"] = await self._context(user_id, device_id, by_id[res["result"]["event_id"]], crit)
        out: dict[str, Any] = {"results": results, "count": count, "highlights": highlights(
            query_terms(crit.search_term), [_text(e) for e in events])}
        if not exhausted and stream_bound is not None:
            out["next_batch"] = encode_batch(crit.order_by, offset, stream_bound, count, batch.group)
        if crit.include_state:
            out["state"] = {}
            for room_id in dict.fromkeys(e["room_id"] for e in events):
                try:
                    out["state"][room_id] = await self.room_state.get_state(user_id, room_id)
                except MatrixError:
                    pass
        if crit.group_by:
            out["groups"] = await self._groups(crit, rows, scopes, query, offset, exhausted, batch)
        return {"search_categories": {"room_events": out}}

    async def _visible(self, user_id: str, hits: list[Any], flt: EventFilter) -> list[Any]:
        """The hits' rows the user may see that pass the filter (types, senders, contains_url), not redacted."""
        candidates = [h for h in hits if flt.allows_type(h.type)]
        found = await self.events.get_events_as_list([h.event_id for h in candidates])
        found = [r for r in found if r.redacted_by is None and flt.matches_fields(r.type, r.sender, r.content)]
        return await self.visibility.filter(user_id, found)

    async def _visible_count(self, user_id: str, scopes: list[RoomScope], crit: RoomEventsCriteria, raw: int,
                             scanned: int, shown: int, query: dict[str, Any]) -> int:
        """``count`` after the visibility filter: exact up to COUNT_EXACT_MAX matches (one pass over their ids,
        done on the first page only: later pages carry it in next_batch), else the raw count scaled by the
        share of this page's hits the user could see (the spec asks for an approximate count)."""
        if raw <= COUNT_EXACT_MAX:
            hits, _ = await self.store.search(scopes, crit.search_term, crit.keys, "recent", raw, **query)
            visible = 0
            for i in range(0, len(hits), 200):
                visible += len(await self._visible(user_id, hits[i : i + 200], crit.filter))
            return visible
        return round(raw * shown / scanned) if scanned else raw

    async def _groups(self, crit: RoomEventsCriteria, rows: list[Any], scopes: list[RoomScope],
                      query: dict[str, Any], offset: int, exhausted: bool, batch: Batch) -> dict[str, Any]:
        """``groups``: each group's results on this page and its *own* next_batch, which continues that room's
        (or sender's) results only, from just after its last result here."""
        groups: dict[str, dict[str, Any]] = {}
        for key in crit.group_by:
            g: dict[str, Any] = {}
            oldest: dict[str, int] = {}  # group value -> stream position of its last (oldest) result here
            for r in rows:
                value = r.room_id if key == "room_id" else r.sender
                entry = g.setdefault(value, {"results": [], "order": len(g) + 1})
                entry["results"].append(r.event_id)
                oldest[value] = min(oldest.get(value, r.stream_ordering), r.stream_ordering)
            if not exhausted and g:
                offsets: dict[str, int] = {}
                if crit.order_by == "rank":
                    if batch.group is not None and batch.group[0] == key:
                        offsets = {batch.group[1]: offset}  # the page was already restricted to this group
                    else:
                        offsets = await self.store.group_offsets(scopes, crit.search_term, crit.keys, offset, key, **query)
                for value, entry in g.items():
                    if crit.order_by == "rank":
                        token = encode_batch("rank", offsets.get(value, 0), 0, None, (key, value))
                    else:
                        token = encode_batch("recent", 0, oldest[value], None, (key, value))
                    entry["next_batch"] = token
            groups[key] = g
        return groups

    async def _context(self, user_id: str, device_id: str | None, row: Any, crit: RoomEventsCriteria) -> dict[str, Any]:
        here = room_position.before(row.topological_ordering, row.stream_ordering)
        past = room_position.after(row.topological_ordering, row.stream_ordering)
        before = await self.events.paginate(row.room_id, here, True, crit.before_limit) if crit.before_limit else []
        after = await self.events.paginate(row.room_id, past, False, crit.after_limit) if crit.after_limit else []
        start_row = before[-1] if before else row  # positions just outside the scanned rows, as /context
        end_row = after[-1] if after else row
        before = await self.visibility.filter(user_id, before)
        after = await self.visibility.filter(user_id, after)
        ctx: dict[str, Any] = {
            "events_before": await self.formatter.format(before, user_id, device_id),
            "events_after": await self.formatter.format(after, user_id, device_id),
            "start": room_position.before(start_row.topological_ordering, start_row.stream_ordering).render(),
            "end": room_position.after(end_row.topological_ordering, end_row.stream_ordering).render(),
        }
        if crit.include_profile:
            info: dict[str, Any] = {}
            for r in [*before, row, *after]:
                if r.sender in info:
                    continue
                member = await self.state.get_state_values(r.state_after, [("m.room.member", r.sender)])
                mrow = await self.events.get_event(member.get(("m.room.member", r.sender), "")) if member else None
                content = mrow.content if mrow is not None and mrow.redacted_by is None else {}
                info[r.sender] = {k: content[k] for k in ("displayname", "avatar_url") if isinstance(content.get(k), str)}
            ctx["profile_info"] = info
        return ctx


def _text(event: dict[str, Any]) -> str:
    c = event.get("content") or {}
    return " ".join(v for v in (c.get("body"), c.get("name"), c.get("topic")) if isinstance(v, str))
