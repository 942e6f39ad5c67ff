"""Event reads the federation side needs: events by id whatever their status (timeline or stored apart),
the auth-chain index (``event_auth_ids``), DAG walks for get_missing_events/backfill, inbound txn dedupe."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from homeserver.events import Event, get_room_version
from storage.database import Database, Txn

_MAX_CHAIN = 200_000  # an auth chain larger than this is refused (hostile DAG)


@dataclass
class StoredPdu:
    event: Event
    status: str  # accepted | rejected | soft_failed | outlier
    state_before: str | None
    state_after: str | None  # timeline events only


class FederationEventStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._versions: dict[str, str] = {}

    def _version(self, txn: Txn, room_id: str) -> str | None:
        v = self._versions.get(room_id)
        if v is None:
            v = txn.query_value("SELECT room_version FROM rooms WHERE room_id = ?", (room_id,))
            if v is not None:
                self._versions[room_id] = v
        return v

    def _pdus_txn(self, txn: Txn, ids: list[str]) -> dict[str, StoredPdu]:
        out: dict[str, StoredPdu] = {}
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            clause, params = txn.in_list("event_id", part)
            for eid, room_id, js, before, after in txn.query(
                f"SELECT event_id, room_id, json, state_before, state_after FROM events WHERE {clause}", params
            ):
                v = self._version(txn, room_id)
                if v is not None:
                    out[eid] = StoredPdu(_event(js, v, eid), "accepted", before, after)
            rest = [e for e in part if e not in out]
            if rest:
                clause, params = txn.in_list("event_id", rest)
                for eid, room_id, js, status, before, own_version in txn.query(
                    f"SELECT event_id, room_id, json, status, state_before, room_version FROM event_outliers WHERE {clause}", params
                ):
                    v = self._version(txn, room_id) or own_version
                    if v is not None:
                        out[eid] = StoredPdu(_event(js, v, eid), status, before, None)
        return out

    async def get_pdus(self, event_ids: Iterable[str]) -> dict[str, StoredPdu]:
        ids = list(dict.fromkeys(event_ids))
        if not ids:
            return {}
        return await self.db.read("fed_get_pdus", self._pdus_txn, ids)

    async def statuses(self, event_ids: Iterable[str]) -> dict[str, str]:
        """Which of ``event_ids`` we hold, and how (accepted | rejected | soft_failed | outlier)."""
        ids = list(dict.fromkeys(event_ids))
        if not ids:
            return {}

        def fn(txn: Txn) -> dict[str, str]:
            out: dict[str, str] = {}
            for clause, params in txn.in_batches("event_id", ids):
                out.update({r[0]: "accepted" for r in txn.query(f"SELECT event_id FROM events WHERE {clause}", params)})
                out.update({r[0]: r[1] for r in txn.query(f"SELECT event_id, status FROM event_outliers WHERE {clause}", params)})
            return out

        return await self.db.read("fed_statuses", fn)

    async def auth_chain_ids(self, event_ids: Iterable[str]) -> set[str]:
        """Every event reachable through auth_events from ``event_ids`` (not including them)."""
        start = list(dict.fromkeys(event_ids))
        if not start:
            return set()

        def fn(txn: Txn) -> set[str]:
            seen: set[str] = set()
            frontier = start
            while frontier:
                nxt: list[str] = []
                for i in range(0, len(frontier), 500):
                    part = frontier[i : i + 500]
                    clause, params = txn.in_list("event_id", part)
                    found = txn.query(f"SELECT event_id, auth_ids FROM event_auth_ids WHERE {clause}", params)
                    lists = [json.loads(ids) for _, ids in found]
                    if len(found) < len(part):
                        lists.extend(_pdu_auth_ids(txn, set(part).difference(r[0] for r in found)))
                    for auth_ids in lists:
                        for a in auth_ids:
                            if a not in seen:
                                seen.add(a)
                                nxt.append(a)
                if len(seen) > _MAX_CHAIN:
                    raise ValueError("auth chain too large")
                frontier = nxt
            return seen

        return await self.db.read("fed_auth_chain", fn)

    async def walk_back(self, room_id: str, start: list[str], stop: set[str], limit: int,
                        min_depth: int = 0) -> list[Event]:
        """Timeline events reached backwards through prev_events from ``start`` (excluded), not crossing ``stop``,
        breadth-first by depth, at most ``limit`` (get_missing_events, backfill)."""
        def fn(txn: Txn) -> list[tuple[str, str, int]]:
            out: list[tuple[str, str, int]] = []
            seen = set(start) | set(stop)
            frontier = list(start)
            while frontier and len(out) < limit:
                clause, params = txn.in_list("ed.event_id", frontier[:500])
                rows = txn.query(
                    "SELECT e.event_id, e.json, e.topological_ordering FROM event_edges ed JOIN events e "
                    f"ON e.event_id = ed.prev_event_id WHERE {clause} AND e.room_id = ?", [*params, room_id]
                )
                frontier = []
                for eid, js, depth in sorted(rows, key=lambda r: -r[2]):
                    if eid in seen or depth < min_depth:
                        continue
                    seen.add(eid)
                    out.append((eid, js, depth))
                    frontier.append(eid)
                    if len(out) >= limit:
                        break
            return out

        rows = await self.db.run("fed_walk_back", fn)
        v = await self.room_version(room_id)
        return [_event(js, v, eid) for eid, js, _ in rows] if v else []

    async def room_version(self, room_id: str) -> str | None:
        v = self._versions.get(room_id)
        if v is None:
            v = await self.db.run("fed_room_version", self._version, room_id)
        return v

    async def backward_extremities(self, room_id: str) -> list[str]:
        rows = await self.db.query("fed_backward_extremities", "SELECT event_id FROM room_backward_extremities WHERE room_id = ?", (room_id,))
        return [r[0] for r in rows]

    async def latest_membership(self, user_id: str, room_id: str) -> tuple[str, str, str] | None:
        """(event_id, sender, membership) of the user's latest membership event in the room."""
        rows = await self.db.query(
            "fed_latest_membership",
            "SELECT event_id, sender, membership FROM membership_events WHERE user_id = ? AND room_id = ? "
            "ORDER BY stream_ordering DESC LIMIT 1", (user_id, room_id))
        return (rows[0][0], rows[0][1], rows[0][2]) if rows else None

    # ---- inbound transactions ----
    async def get_txn_response(self, origin: str, txn_id: str) -> dict[str, Any] | None:
        rows = await self.db.query("fed_txn_get", "SELECT response FROM federation_inbound_txns WHERE origin = ? AND txn_id = ?", (origin, txn_id))
        return json.loads(rows[0][0]) if rows else None

    async def store_txn_response(self, origin: str, txn_id: str, response: dict[str, Any], now: int) -> None:
        def fn(txn: Txn) -> None:
            txn.execute(
                "INSERT INTO federation_inbound_txns (origin, txn_id, response, received_ts) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (origin, txn_id) DO NOTHING", (origin, txn_id, json.dumps(response), now))

        await self.db.run("fed_txn_put", fn)


def _event(js: str, version: str, event_id: str) -> Event:
    pdu = json.loads(js)
    return Event(pdu, get_room_version(version), event_id)


def _pdu_auth_ids(txn: Txn, event_ids: set[str]) -> list[list[str]]:
    """Auth event ids of timeline events without an ``event_auth_ids`` row (local non-state events, which the
    persister does not index), read from their stored PDUs; unknown events give nothing."""
    clause, params = txn.in_list("event_id", sorted(event_ids))
    out: list[list[str]] = []
    for (raw,) in txn.query(f"SELECT json FROM events WHERE {clause}", params):
        try:
            refs = json.loads(raw).get("auth_events") or []
        except (ValueError, AttributeError):
            continue
        # room v1/v2 list [event_id, hashes] pairs, later versions bare ids
        ids = (r[0] if isinstance(r, list) and r else r for r in refs if isinstance(refs, list))
        out.append([x for x in ids if isinstance(x, str)])
    return out
