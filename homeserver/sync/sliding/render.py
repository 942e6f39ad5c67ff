"""Room results for sliding sync: timeline, required_state, name/avatar/heroes, counts, bump_stamp.

Every step is batched over all the rooms of one response (timelines through the /sync rooms provider and its
recent-timeline index, state sets in one transaction, state events in one fetch, formatting in two calls).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from homeserver.sync.filter import DEFAULT_FILTER
from homeserver.sync.sliding.connection import RoomStatus
from homeserver.sync.sliding.request import RoomConfig

StateKey = tuple[str, str]
MAX_HEROES = 5
# "proper" activity that moves a room's bump_stamp (MSC4186)
BUMP_TYPES = ("m.room.create", "m.room.message", "m.room.encrypted", "m.sticker", "m.call.invite",
              "m.poll.start", "m.beacon_info")
NAME_KEY: StateKey = ("m.room.name", "")
AVATAR_KEY: StateKey = ("m.room.avatar", "")
STRIPPED_KEYS = ("type", "state_key", "content", "sender")
STRIPPED_STATE_TYPES = ("m.room.create", "m.room.join_rules", "m.room.name", "m.room.avatar", "m.room.canonical_alias",
                        "m.room.encryption", "m.room.topic")


@dataclass
class RenderJob:
    room_id: str
    membership: Any  # storage Membership (room_id, membership, event_id, stream_ordering, sender)
    config: RoomConfig  # required_state already resolved ($ME)
    lists: list[str]
    prev: RoomStatus | None
    initial: bool  # the client replaces what it had (first time on this connection, or membership changed)
    from_pos: int  # timeline window: (from_pos, upto]
    upto: int
    expanded: bool = False  # timeline_limit grew: the latest N events again, expanded_timeline: true
    full_state: bool = False  # send all of required_state (initial, or required_state grew)
    counts_only: bool = False  # only unread counts changed (the user's own receipt moved)
    rs_sig: str = ""  # signature of config.required_state (stored on the connection)

    @property
    def stripped(self) -> bool:
        return self.membership.membership in ("invite", "knock")


class RoomRenderer:
    def __init__(self, rooms_provider: Any, sync_store: Any, state: Any, events: Any, room_cache: Any,
                 visibility: Any, push_counts: Any, sliding_store: Any) -> None:
        self._rooms = rooms_provider
        self._sync_store = sync_store
        self._state = state
        self._events = events
        self._room_cache = room_cache
        self._visibility = visibility
        self._push_counts = push_counts
        self._sliding_store = sliding_store

    async def render(self, user_id: str, device_id: str | None, jobs: list[RenderJob], since_events: int | None,
                     now_events: int, ignored: frozenset[str], lazy_known: dict[str, dict[str, str]] | None = None,
                     lazy_sent: dict[str, dict[str, str]] | None = None) -> dict[str, dict[str, Any]]:
        """Room results for ``jobs``. ``lazy_known``: room -> {user: member event id} the client already holds on
        this connection (lazy members it has are not sent again); ``lazy_sent`` is filled with what it holds after
        this response, for the rooms rendered."""
        out: dict[str, dict[str, Any]] = {}
        stripped = [j for j in jobs if j.stripped]
        full = [j for j in jobs if not j.stripped]
        if stripped:
            out.update(await self._render_stripped(user_id, stripped))
        if full:
            out.update(await self._render_rooms(user_id, device_id, full, since_events, now_events, ignored,
                                                lazy_known or {}, lazy_sent))
        return out

    # ---- invites and knocks: only what the invite/knock carried ----
    async def _render_stripped(self, user_id: str, jobs: list[RenderJob]) -> dict[str, dict[str, Any]]:
        rows = await self._events.get_events([j.membership.event_id for j in jobs])
        out = {}
        for j in jobs:
            row = rows.get(j.membership.event_id)
            if row is None:
                continue
            key = "invite_room_state" if j.membership.membership == "invite" else "knock_room_state"
            carried = (row.pdu.get("unsigned") or {}).get(key)
            if not carried and row.state_before:
                carried = await self._local_stripped(row.state_before)
            stripped = [e for e in list(carried or [])
                        if isinstance(e, dict) and not (e.get("type") == "m.room.member" and e.get("state_key") == user_id)]
            stripped.append({k: row.pdu[k] for k in STRIPPED_KEYS if k in row.pdu})
            entry: dict[str, Any] = {"initial": True, "membership": j.membership.membership,
                                     "bump_stamp": j.membership.stream_ordering, "stripped_state": stripped}
            if j.membership.membership == "invite":
                entry["invite_state"] = stripped  # the name the Rust SDK and Synapse use
                if (row.content or {}).get("is_direct") is True:
                    entry["is_dm"] = True
            for e in stripped:
                content = e.get("content") if isinstance(e.get("content"), dict) else {}
                if e.get("type") == "m.room.name" and isinstance(content.get("name"), str) and content["name"]:
                    entry["name"] = content["name"]
                elif e.get("type") == "m.room.avatar" and isinstance(content.get("url"), str) and content["url"]:
                    entry["avatar"] = content["url"]
            if j.lists:
                entry["lists"] = list(j.lists)
            out[j.room_id] = entry
        return out

    async def _local_stripped(self, set_id: str) -> list[dict[str, Any]]:
        """A room of this server whose invite/knock carries no stripped state: the same state types, read from the
        room's state at the invite (what the invitee may see before joining)."""
        ids = await self._state.get_state_values(set_id, [(t, "") for t in STRIPPED_STATE_TYPES])
        rows = await self._events.get_events(list(ids.values())) if ids else {}
        return [{k: r.pdu[k] for k in STRIPPED_KEYS if k in r.pdu} for r in rows.values() if r.redacted_by is None]

    # ---- rooms the user is or was joined to ----
    async def _render_rooms(self, user_id: str, device_id: str | None, jobs: list[RenderJob], since_events: int | None,
                            now_events: int, ignored: frozenset[str], lazy_known: dict[str, dict[str, str]],
                            lazy_sent: dict[str, dict[str, str]] | None) -> dict[str, dict[str, Any]]:
        by_id = {j.room_id: j for j in jobs}

        def pred(r: Any) -> bool:
            return not (r.sender in ignored and r.state_key is None)

        # timelines, one batch per limit
        timelines: dict[str, list[Any]] = {}
        limited: dict[str, bool] = {}
        prev_batch: dict[str, str] = {}
        by_limit: dict[int, list[tuple[str, int, int]]] = {}
        for j in jobs:
            if j.config.timeline_limit > 0 and not j.counts_only:
                start = 0 if (j.initial or j.expanded) else j.from_pos
                by_limit.setdefault(j.config.timeline_limit, []).append((j.room_id, start, j.upto))
            timelines.setdefault(j.room_id, [])
        for limit, wanted in by_limit.items():
            rows, lim, prev = await self._rooms.load_timelines(wanted, limit, pred if ignored else None)
            timelines.update(rows)
            limited.update(lim)
            prev_batch.update(prev)
        if self._visibility is not None:
            for j in jobs:
                rows = timelines.get(j.room_id)
                if not rows or not (j.initial or j.expanded or j.membership.membership != "join"):
                    continue
                if j.membership.membership == "join" and rows[0].stream_ordering > j.membership.stream_ordering:
                    continue  # all after the user's current join: visible to a member whatever the history visibility
                timelines[j.room_id] = await self._visibility.filter(user_id, rows)

        # state sets: now (end of the window) and, for incremental rooms, where the client's copy ends
        end_sets = await self._sync_store.state_sets_at([(j.room_id, j.upto) for j in jobs if not j.counts_only])
        diff_jobs = [j for j in jobs if not j.initial and not j.counts_only and j.prev is not None
                     and (limited.get(j.room_id) or any(r.state_key is not None for r in timelines[j.room_id])
                          or j.config.timeline_limit == 0)]
        start_sets = await self._sync_store.state_sets_at([(j.room_id, j.prev.sent_upto) for j in diff_jobs if j.prev]) if diff_jobs else {}
        diff_rooms = {j.room_id for j in diff_jobs}

        # ``[type, "*"]`` in a joined room: the room's current state of those types (one batched read), not the
        # whole state map (which holds every member of a large room)
        typed_wanted = []
        for j in jobs:
            if (j.initial or j.full_state) and not j.counts_only and j.membership.membership == "join":
                types = j.config.required_state.wildcard_types()
                if types:
                    typed_wanted.append((j.room_id, types))
        typed = await self._sliding_store.current_state_of_types(typed_wanted) if typed_wanted else {}

        state_ids: dict[str, dict[StateKey, str]] = {}
        removed: dict[str, list[StateKey]] = {}
        meta_ids: dict[str, dict[StateKey, str]] = {}  # name/avatar (and heroes' members) for name computation
        members_changed: set[str] = set()
        for j in jobs:
            if j.counts_only:
                continue
            set_id = end_sets.get(j.room_id)
            rs = j.config.required_state
            rows = timelines[j.room_id]
            ids: dict[StateKey, str] = {}
            if j.initial or j.full_state:
                if j.room_id not in typed and rs.needs_full_map():
                    full_map = await self._state.get_state_ids(set_id)
                    ids = {k: v for k, v in full_map.items() if rs.matches(*k)}
                else:
                    keys = [k for k in rs.exact_keys() if rs.matches(*k)]
                    ids = await self._state.get_state_values(set_id, keys) if keys else {}
                    ids.update({k: v for k, v in typed.get(j.room_id, {}).items() if rs.matches(*k)})
                if j.initial:
                    meta_ids[j.room_id] = await self._state.get_state_values(set_id, [NAME_KEY, AVATAR_KEY])
                    members_changed.add(j.room_id)
            if j.room_id in diff_rooms:
                changed, gone = await self._state.diff(start_sets.get(j.room_id), set_id)
                ids.update({k: v for k, v in changed.items() if rs.matches(*k)})
                removed[j.room_id] = sorted(k for k in gone if rs.matches(*k))
                meta = {k: v for k, v in changed.items() if k in (NAME_KEY, AVATAR_KEY)}
                for k in gone:
                    if k in (NAME_KEY, AVATAR_KEY):
                        meta[k] = ""  # removed
                if meta:
                    meta_ids[j.room_id] = meta
                if any(k[0] == "m.room.member" for k in changed) or any(k[0] == "m.room.member" for k in gone):
                    members_changed.add(j.room_id)
            elif any(r.type == "m.room.member" for r in rows):
                members_changed.add(j.room_id)
            # lazy members: what the client holds of this room on this connection is still valid unless the result
            # replaces the room (initial) or has a gap (limited: the MSC has clients flush their member cache)
            fresh_members = j.initial or j.full_state or j.expanded or bool(limited.get(j.room_id))
            held = {} if fresh_members else lazy_known.get(j.room_id, {})
            if rs.lazy and rows:
                wanted = {r.sender for r in rows}
                wanted.update(r.state_key for r in rows if r.type == "m.room.member" and r.state_key)
                keys = [("m.room.member", u) for u in wanted if ("m.room.member", u) not in ids]
                if keys:
                    found = await self._state.get_state_values(set_id, keys)
                    ids.update({k: v for k, v in found.items() if held.get(k[1]) != v})
            # state events in the timeline are not repeated unless the client asked for them explicitly
            in_timeline = {r.event_id for r in rows}
            state_ids[j.room_id] = {k: v for k, v in ids.items() if v not in in_timeline or j.initial}
            if lazy_sent is not None:
                now_held = dict(held)
                now_held.update({k[1]: v for k, v in state_ids[j.room_id].items() if k[0] == "m.room.member"})
                now_held.update({r.state_key: r.event_id for r in rows if r.type == "m.room.member" and r.state_key})
                lazy_sent[j.room_id] = now_held

        # heroes (only for rooms without a name) and member counts: from the in-memory room snapshot when it is
        # there, else one batched read of current state (no snapshot load per room on a cold server)
        summaries: dict[str, tuple[int, int, list[str]]] = {}
        cold: list[str] = []
        peek = getattr(self._room_cache, "peek", None)
        # current membership is none of a former member's business: counts and heroes only while joined
        members_changed = {r for r in members_changed if by_id[r].membership.membership == "join"}
        for room_id in members_changed:
            snap = peek(room_id) if peek is not None else None
            if snap is None:
                cold.append(room_id)
                continue
            ms = snap.memberships
            summaries[room_id] = (sum(1 for m in ms.values() if m == "join"), sum(1 for m in ms.values() if m == "invite"),
                                  _heroes(ms, user_id))
        if cold:
            summaries.update(await self._sliding_store.member_summaries(cold, user_id, MAX_HEROES))
        hero_ids: dict[str, list[str]] = {}
        for room_id, (_, _, heroes) in summaries.items():
            has_name = bool(meta_ids.get(room_id, {}).get(NAME_KEY)) if by_id[room_id].initial else False
            if not has_name:
                hero_ids[room_id] = heroes
        hero_member_ids: dict[str, dict[StateKey, str]] = {}
        for room_id, heroes in hero_ids.items():
            if heroes:
                hero_member_ids[room_id] = await self._state.get_state_values(end_sets.get(room_id),
                                                                               [("m.room.member", u) for u in heroes])

        # one fetch for every state event we need, one format call each for state and timeline
        wanted_events: set[str] = set()
        for ids in (*state_ids.values(), *meta_ids.values(), *hero_member_ids.values()):
            wanted_events.update(v for v in ids.values() if v)
        state_rows = await self._events.get_events(wanted_events) if wanted_events else {}
        all_state = [state_rows[e] for ids in state_ids.values() for e in ids.values() if e in state_rows]
        st_formatted = await self._rooms.format_events(DEFAULT_FILTER, all_state, user_id, None)
        st_by_room: dict[str, list[dict[str, Any]]] = {}
        for r, e in zip(all_state, st_formatted):
            st_by_room.setdefault(r.room_id, []).append(e)
        all_timeline = [r for rows in timelines.values() for r in rows]
        tl_formatted = await self._rooms.format_events(DEFAULT_FILTER, all_timeline, user_id, device_id)
        tl_by_id = {r.event_id: e for r, e in zip(all_timeline, tl_formatted)}

        # unread counts for joined rooms
        counts: dict[str, Any] = {}
        joined = {j.room_id: j.membership.stream_ordering for j in jobs if j.membership.membership == "join"}
        if self._push_counts is not None and joined:
            counts = await self._push_counts.for_rooms(user_id, joined, now_events, ignored)

        # bump stamps: from the timeline when it holds a bump event, else one batched query
        bumps: dict[str, int] = {}
        need_bump: list[tuple[str, int]] = []
        for j in jobs:
            if j.membership.membership != "join":
                if j.initial:
                    bumps[j.room_id] = j.membership.stream_ordering
                continue
            stamp = max((r.stream_ordering for r in timelines[j.room_id] if r.type in BUMP_TYPES), default=None)
            if stamp is not None:
                bumps[j.room_id] = stamp
            elif j.initial:
                need_bump.append((j.room_id, j.upto))
        if need_bump:
            bumps.update(await self._sliding_store.bump_stamps(need_bump, BUMP_TYPES))

        out: dict[str, dict[str, Any]] = {}
        for j in jobs:
            room_id = j.room_id
            entry: dict[str, Any] = {}
            if j.initial:
                entry["initial"] = True
                entry["membership"] = j.membership.membership
            elif j.prev is not None and j.prev.membership != j.membership.membership:
                entry["membership"] = j.membership.membership
            if j.lists:
                entry["lists"] = list(j.lists)
            if not j.counts_only:
                rows = timelines[room_id]
                if j.config.timeline_limit > 0:
                    entry["timeline"] = [tl_by_id[r.event_id] for r in rows]
                    entry["limited"] = bool(limited.get(room_id, False))
                    if room_id in prev_batch:
                        entry["prev_batch"] = prev_batch[room_id]
                    entry["num_live"] = sum(1 for r in rows if since_events is not None and r.stream_ordering > since_events)
                    if j.expanded:
                        entry["expanded_timeline"] = True
                state = st_by_room.get(room_id, [])
                stubs = [{"type": t, "state_key": sk} for t, sk in removed.get(room_id, [])]
                if j.initial or state or stubs:
                    entry["required_state"] = state + stubs
                meta = meta_ids.get(room_id, {})
                _name_avatar(entry, meta, state_rows, j.initial)
                if room_id in summaries:
                    entry["joined_count"], entry["invited_count"], _ = summaries[room_id]
                    if room_id in hero_ids and (j.initial or "name" not in entry):
                        entry["heroes"] = _hero_entries(hero_ids[room_id], hero_member_ids.get(room_id, {}), state_rows)
            if room_id in bumps:
                entry["bump_stamp"] = bumps[room_id]
            c = counts.get(room_id)
            if c is not None:
                entry.update(c.unread(False))
            out[room_id] = entry
        return out


def _heroes(memberships: dict[str, str], user_id: str) -> list[str]:
    first = sorted(u for u, m in memberships.items() if u != user_id and m == "join")
    invited = sorted(u for u, m in memberships.items() if u != user_id and m == "invite")
    left = sorted(u for u, m in memberships.items() if u != user_id and m in ("leave", "ban"))
    return ((first + invited) or left)[:MAX_HEROES]


def _hero_entries(heroes: Iterable[str], member_ids: dict[StateKey, str], rows: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for u in heroes:
        hero: dict[str, Any] = {"user_id": u}
        row = rows.get(member_ids.get(("m.room.member", u), ""))
        content = row.content if row is not None and row.redacted_by is None else {}
        if isinstance(content.get("displayname"), str):
            hero["displayname"] = content["displayname"]
        if isinstance(content.get("avatar_url"), str):
            hero["avatar_url"] = content["avatar_url"]
        out.append(hero)
    return out


def _name_avatar(entry: dict[str, Any], meta: dict[StateKey, str], rows: dict[str, Any], initial: bool) -> None:
    """``name``/``avatar`` from m.room.name / m.room.avatar: on initial results when set, on incremental ones when
    they changed (``null`` when removed or emptied)."""
    for key, field_name, content_key in ((NAME_KEY, "name", "name"), (AVATAR_KEY, "avatar", "url")):
        if key not in meta:
            continue
        row = rows.get(meta[key]) if meta[key] else None
        content = row.content if row is not None and row.redacted_by is None else {}
        value = content.get(content_key)
        if isinstance(value, str) and value:
            entry[field_name] = value
        elif not initial:
            entry[field_name] = None
