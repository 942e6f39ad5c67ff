"""SQL for "the events before / after a :class:`RoomPosition`" on any table keyed by
``(topological_ordering, stream_ordering)`` (events, event_relations, threads)."""

from __future__ import annotations

from typing import Any

from homeserver.types.room_position import RoomPosition


def side_clause(pos: RoomPosition, before: bool, prefix: str = "") -> tuple[str, list[Any]]:
    """WHERE fragment selecting the rows that lie before (``before=True``) or after ``pos``.

    Topological positions cut between keys: before is ``key < (t, s)``, after ``key >= (t, s)``.
    Stream-only positions cut after stream position ``n``: before is ``stream <= n``, after ``stream > n``.
    """
    topo_col, stream_col = f"{prefix}topological_ordering", f"{prefix}stream_ordering"
    if pos.topo is None:
        return (f"{stream_col} <= ?" if before else f"{stream_col} > ?"), [pos.stream]
    if before:
        return (f"({topo_col} < ? OR ({topo_col} = ? AND {stream_col} < ?))", [pos.topo, pos.topo, pos.stream])
    return (f"({topo_col} > ? OR ({topo_col} = ? AND {stream_col} >= ?))", [pos.topo, pos.topo, pos.stream])


def page_clause(from_pos: RoomPosition | None, to_pos: RoomPosition | None, backwards: bool,
                prefix: str = "") -> tuple[list[str], list[Any]]:
    """WHERE fragments for one page: the rows on the travelling side of ``from_pos``, not past ``to_pos``."""
    where: list[str] = []
    params: list[Any] = []
    if from_pos is not None:
        w, p = side_clause(from_pos, before=backwards, prefix=prefix)
        where.append(w)
        params.extend(p)
    if to_pos is not None:
        w, p = side_clause(to_pos, before=not backwards, prefix=prefix)
        where.append(w)
        params.extend(p)
    return where, params
