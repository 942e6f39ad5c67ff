"""Stream position allocation.

Every kind of change (room events, account data, receipts, to-device, ...) is a
stream with monotonically increasing integer positions. A writer allocates a
position before its transaction, writes it in the same transaction, and marks it
done after commit (or failure). Readers only ever read up to
:meth:`StreamIdGenerator.current`, the highest position below which every
allocated position has finished, so a slow transaction never lets a reader skip
a row that commits later.

One process writes a given stream today; the token format keeps room for several
writers per stream later (see ``homeserver/sync/token.py``).
"""

from __future__ import annotations

import contextlib
import heapq
from typing import Any, Iterator

from storage.database import Txn


class StreamIdGenerator:
    """Allocates positions for one stream in one writer process."""

    def __init__(self, name: str, current: int) -> None:
        self.name = name
        self._last_allocated = current
        self._current = current
        self._unfinished: list[int] = []
        self._finished: set[int] = set()

    @classmethod
    def load(cls, txn: Txn, name: str, tables: list[tuple[str, str]]) -> "StreamIdGenerator":
        """Start from the highest position already written in ``tables`` [(table, column), ...]."""
        highest = 0
        for table, column in tables:
            value = txn.query_value(f"SELECT MAX({column}) FROM {table}", default=0)  # noqa: S608 - fixed names
            highest = max(highest, int(value))
        return cls(name, highest)

    def allocate(self) -> int:
        self._last_allocated += 1
        heapq.heappush(self._unfinished, self._last_allocated)
        return self._last_allocated

    def allocate_many(self, n: int) -> list[int]:
        return [self.allocate() for _ in range(n)]

    def finish(self, position: int) -> int:
        """Mark ``position`` done (committed or abandoned). Returns the new current position."""
        self._finished.add(position)
        while self._unfinished and self._unfinished[0] in self._finished:
            done = heapq.heappop(self._unfinished)
            self._finished.discard(done)
            self._current = done
        if not self._unfinished:
            self._current = self._last_allocated
        return self._current

    @contextlib.contextmanager
    def next(self) -> Iterator[int]:
        """``with gen.next() as pos: await write(pos)`` — finishes ``pos`` whatever happens."""
        pos = self.allocate()
        try:
            yield pos
        finally:
            self.finish(pos)

    def current(self) -> int:
        return self._current

    def advance_to(self, position: int) -> None:
        """Another writer (replication) reached ``position``: readers may read up to it."""
        if position > self._current and not self._unfinished:
            self._current = position
            self._last_allocated = max(self._last_allocated, position)

    def follow_from(self, position: int) -> None:
        """A follower (a process that never writes this stream) starts reading at ``position``, which may be
        below what :meth:`load` found: a row committed above another writer's unfinished position must not be
        taken as "everything up to here is readable". Only before serving; no effect once this process writes."""
        if not self._unfinished and self._last_allocated == self._current:
            self._current = position
            self._last_allocated = position

    def __repr__(self) -> str:
        return f"StreamIdGenerator({self.name!r}, current={self._current})"


def describe(gens: dict[str, StreamIdGenerator]) -> dict[str, Any]:
    return {name: gen.current() for name, gen in gens.items()}
