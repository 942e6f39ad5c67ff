"""Room pagination tokens: a token is a *position between events*, never an event.

Events of a room are ordered by the key ``(topological_ordering, stream_ordering)``. A
:class:`RoomPosition` cuts that order in two:

- ``RoomPosition(t, s)`` (rendered ``t{t}_{s}``) lies just before the event whose key is
  ``(t, s)``: events with key ``< (t, s)`` are before it, events with key ``>= (t, s)`` after it.
  :func:`before` and :func:`after` build the positions on either side of an event.
- ``RoomPosition(None, n)`` (rendered ``s{n}``, or a sync ``next_batch``) lies just after
  stream position ``n``: events with ``stream_ordering <= n`` are before it, the rest after it.

Paginating backwards from a position returns the events before it (newest first); forwards, the
events after it (oldest first). So the token a backward page ends on, used forwards, returns the
events that page returned, starting with its oldest, and vice versa: switching direction never
skips or repeats an event (the spec's model; see ``docs/messaging.md``).

Pure: no I/O. The SQL for "before/after a position" is in ``storage/stores/positions.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from homeserver.api.errors import InvalidParam

# "r" is the relations token of earlier versions; events backfilled over federation have negative stream orderings
_TOPO_RE = re.compile(r"^[tr](\d{1,19})_(-?\d{1,19})$")
_STREAM_RE = re.compile(r"^s(\d{1,19})$")
_SYNC_RE = re.compile(r"^s1_(\d{1,19})(?:~[^_]*)?(?:_.*)?$")  # a sync next_batch: its events position
_MAX = 2**63  # 19 digits can exceed a 64-bit column


@dataclass(frozen=True, order=False)
class RoomPosition:
    """A point in a room's event order (see the module docstring). ``topo`` None: a stream-only position."""

    topo: int | None
    stream: int

    def render(self) -> str:
        return f"s{self.stream}" if self.topo is None else f"t{self.topo}_{self.stream}"

    def __str__(self) -> str:
        return self.render()


def before(topo: int, stream: int) -> RoomPosition:
    """The position just before the event keyed ``(topo, stream)``."""
    return RoomPosition(topo, stream)


def after(topo: int, stream: int) -> RoomPosition:
    """The position just after the event keyed ``(topo, stream)`` (stream orderings are integers)."""
    return RoomPosition(topo, stream + 1)


def parse_position(token: str) -> RoomPosition:
    """``t{topo}_{stream}``, ``s{N}`` or a sync ``next_batch``; anything else is 400 M_INVALID_PARAM."""
    if not isinstance(token, str) or len(token) > 1024:
        raise InvalidParam("Invalid pagination token")
    m = _TOPO_RE.match(token)
    if m and int(m.group(1)) < _MAX and abs(int(m.group(2))) < _MAX:
        return RoomPosition(int(m.group(1)), int(m.group(2)))
    m = _SYNC_RE.match(token) or _STREAM_RE.match(token)
    if m and int(m.group(1)) < _MAX:
        return RoomPosition(None, int(m.group(1)))
    raise InvalidParam("Invalid pagination token")


def parse_optional(token: str | None) -> RoomPosition | None:
    return None if token is None else parse_position(token)
