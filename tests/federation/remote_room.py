"""Events of a room built and signed as a remote server would (for scripting a FakeRemote)."""

from __future__ import annotations

from typing import Any

from homeserver.events import (
    Event,
    build_event,
    get_room_version,
    select_auth_event_ids,
)
from homeserver.events.auth_selection import auth_types_for
from tests.harness import on_reactor

StateKey = tuple[str, str]


class RemoteRoom:
    """A view of a room as a remote server: events by id, the state after each, and a builder.

    ``sync_from(sup, room_id)`` copies the room's events and current state from a SUP server (test set-up)."""

    def __init__(self, remote: Any, room_id: str, version: str) -> None:
        self.remote = remote
        self.room_id = room_id
        self.rv = get_room_version(version)
        self.events: dict[str, Event] = {}
        self.state_after: dict[str, dict[StateKey, str]] = {}
        self.extremities: list[str] = []
        self.ts = 1_700_000_000_000

    @classmethod
    def sync_from(cls, remote: Any, sup: Any, room_id: str) -> RemoteRoom:
        core = sup.app.core
        snap = on_reactor(core.room_cache.get, room_id)
        room = cls(remote, room_id, snap.version.identifier)
        rows = on_reactor(core.event_store.get_events, list(snap.state.values()) + list(snap.extremities))
        for eid, row in rows.items():
            room.events[eid] = row.to_event()
        for e in snap.extremities:
            room.state_after[e] = dict(snap.state)
        room.extremities = list(snap.extremities)
        return room

    def state_at(self, prevs: list[str]) -> dict[StateKey, str]:
        """The state after ``prevs`` (the first prev's, for tests that do not fork state)."""
        return dict(self.state_after[prevs[0]])

    def build(self, sender: str, type: str, content: dict[str, Any], state_key: str | None = None,
              prevs: list[str] | None = None, state: dict[StateKey, str] | None = None, key: Any = None,
              auth: list[str] | None = None) -> Event:
        prevs = list(prevs if prevs is not None else self.extremities)
        state = state if state is not None else self.state_at(prevs)
        if auth is None:
            keys = auth_types_for(self.rv, type, state_key, sender, content)
            auth = list(dict.fromkeys(state[k] for k in keys if k in state))
        self.ts += 1
        depth = max(self.events[p].depth for p in prevs if p in self.events) + 1 if prevs else 1
        ev = build_event(room_version=self.rv, room_id=self.room_id, sender=sender, type=type, content=content,
                         prev_event_ids=prevs, auth_event_ids=auth, depth=depth, origin_server_ts=self.ts,
                         signing_key=key or self.remote.signing_key, server_name=self.remote.server_name,
                         state_key=state_key)
        self.events[ev.event_id] = ev
        after = dict(state)
        if state_key is not None:
            after[(type, state_key)] = ev.event_id
        self.state_after[ev.event_id] = after
        self.extremities = [e for e in self.extremities if e not in prevs] + [ev.event_id]
        return ev

    def pdu(self, ev: Event) -> dict[str, Any]:
        pdu = ev.get_pdu_json()
        if self.rv.event_ids_have_server:
            pdu["event_id"] = ev.event_id
        return pdu

    def serve(self) -> None:
        """Answer /event, /state_ids and /event_auth from this view (the remote's side of gap filling)."""
        r = self.remote

        def event(req: Any) -> Any:
            ev = self.events.get(_unq(req.params["event_id"]))
            if ev is None:
                return 404, {"errcode": "M_NOT_FOUND", "error": "no"}
            return 200, {"origin": r.server_name, "origin_server_ts": 0, "pdus": [self.pdu(ev)]}

        def state_ids(req: Any) -> Any:
            from urllib.parse import parse_qs, urlparse

            eid = parse_qs(urlparse(req.uri).query)["event_id"][0]
            ev = self.events[eid]
            before = {k: v for k, v in self.state_after[eid].items()}
            if ev.state_key is not None:  # the state *at* (before) the event
                prev_state = self.state_after[ev.prev_event_ids[0]] if ev.prev_event_ids else {}
                before[(ev.type, ev.state_key)] = prev_state.get((ev.type, ev.state_key), "")
                before = {k: v for k, v in before.items() if v}
            return 200, {"pdu_ids": list(before.values()), "auth_chain_ids": self.auth_chain(before.values())}

        def event_auth(req: Any) -> Any:
            ev = self.events[_unq(req.params["event_id"])]
            return 200, {"auth_chain": [self.pdu(self.events[e]) for e in self.auth_chain(ev.auth_event_ids) + list(ev.auth_event_ids) if e in self.events]}

        r.route("GET", "/_matrix/federation/v1/event/{event_id}", event)
        r.route("GET", "/_matrix/federation/v1/state_ids/{room_id}", state_ids)
        r.route("GET", "/_matrix/federation/v1/event_auth/{room_id}/{event_id}", event_auth)

    def auth_chain(self, ids: Any) -> list[str]:
        out: list[str] = []
        todo = list(ids)
        while todo:
            e = todo.pop()
            ev = self.events.get(e)
            if ev is None:
                continue
            for a in ev.auth_event_ids:
                if a not in out:
                    out.append(a)
                    todo.append(a)
        return out


def _unq(s: str) -> str:
    from urllib.parse import unquote

    return unquote(s)


__all__ = ["RemoteRoom", "select_auth_event_ids"]
