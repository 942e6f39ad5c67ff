"""Stream position allocation.

Every kind of change (room events, account data, receipts, to-device, ...) is a
stream with monotonically increasing integer positions. A writer allocates a
position before its transaction, writes it in the same transaction, and marks it
done after commit (or failure). Readers only ever read up to
:meth:`StreamIdGenerator.current`, the highest position below which every
allocated position has finished, so a slow transaction never lets a reader skip
a row that commits later.

A stream has one writer (:class:`StreamIdGenerator`, positions allocated in memory) or, for the events
stream of a deployment with event persisters, several (:class:`MultiWriterIdGenerator`, positions from a
PostgreSQL sequence; readers see the stream up to the slowest writer's claim).
"""

from __future__ import annotations

import contextlib
import heapq
from typing import Any, Callable, Iterator

from storage.database import Txn


class StreamIdGenerator:
    """Allocates positions for one stream in one writer process."""

    def __init__(self, name: str, current: int) -> None:
        self.name = name
        self._last_allocated = current
        self._current = current
        self._unfinished: list[int] = []
        self._finished: set[int] = set()
        self._advance_listeners: list[Callable[[str, int], None]] = []

    def add_advance_listener(self, fn: Callable[[str, int], None]) -> None:
        """``fn(name, current)`` whenever :meth:`current` rises (the notifier wakes readers held until then)."""
        self._advance_listeners.append(fn)

    def _advanced(self, before: int) -> None:
        if self._current > before:
            for fn in self._advance_listeners:
                fn(self.name, self._current)

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
        before = self._current
        self._finished.add(position)
        while self._unfinished and self._unfinished[0] in self._finished:
            done = heapq.heappop(self._unfinished)
            self._finished.discard(done)
            self._current = done
        if not self._unfinished:
            self._current = self._last_allocated
        if self._advance_listeners:
            self._advanced(before)
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

    def writer_position(self) -> int:
        """What this process announces and persists as its own position on the stream."""
        return self._current

    def advance_to(self, position: int) -> None:
        """Another writer (replication) reached ``position``: readers may read up to it."""
        if position > self._current and not self._unfinished:
            before = self._current
            self._current = position
            self._last_allocated = max(self._last_allocated, position)
            self._advanced(before)

    def follow_from(self, position: int) -> None:
        """A follower (a process that never writes this stream) starts reading at ``position``, which may be
        below what :meth:`load` found: a row committed above another writer's unfinished position must not be
        taken as "everything up to here is readable". Only before serving; no effect once this process writes."""
        if not self._unfinished and self._last_allocated == self._current:
            self._current = position
            self._last_allocated = position

    def __repr__(self) -> str:
        return f"StreamIdGenerator({self.name!r}, current={self._current})"


class MultiWriterIdGenerator:
    """Positions of a stream written by several processes (the events stream with event persisters).

    Positions come from a database sequence (``allocate_many_async``), so they are unique and increase across
    writers, but writers commit in any order. Each writer *claims* a position: "none of my allocations at or
    below my claim is still running". A writer with allocations in flight claims the lowest one minus one; an
    idle writer claims the highest position it knows of anywhere (its own or another writer's, from
    replication), because its next allocation will be above it. Readers (every process, writers included)
    read up to :meth:`current`, the lowest claim over all writers: every position at or below it was
    allocated by a writer that has finished it. An idle writer therefore never stalls readers for longer than
    it takes to announce its raised claim (``claim_raised``: replication publishes it).

    Thread-free and clock-free: the allocation function is injected (``allocate_fn(n) -> positions``).
    """

    def __init__(self, name: str, instance: str, writers: list[str] | tuple[str, ...], claims: dict[str, int],
                 allocate_fn: Any = None, txn_allocate: Any = None) -> None:
        if not writers:
            raise ValueError("a multi-writer stream needs at least one writer")
        self.name = name
        self.instance = instance
        self.writers = tuple(writers)
        self.is_writer = instance in self.writers
        start = min(claims.get(w, 0) for w in self.writers)
        self._claims = {w: int(claims.get(w, start)) for w in self.writers}
        self._known = max([start, *self._claims.values()])
        self._unfinished: list[int] = []
        self._finished: set[int] = set()
        self._allocate_fn = allocate_fn
        # ``txn_allocate(txn, n) -> positions``: allocation inside the caller's write transaction (the persister);
        # bracket it with begin_txn_allocation / end_txn_allocation
        self.txn_allocate = txn_allocate if instance in writers else None
        self._allocating = 0
        self._frozen = 0
        self._announced = self._claims.get(instance, start)
        if self.is_writer:
            self._claims[instance] = self._own_claim()
        self._current = min(self._claims.values())
        self._advance_listeners: list[Callable[[str, int], None]] = []

    def add_advance_listener(self, fn: Callable[[str, int], None]) -> None:
        """``fn(name, current)`` whenever :meth:`current` rises (the notifier wakes readers held until then)."""
        self._advance_listeners.append(fn)

    # ---- writer side ----
    async def allocate_many_async(self, n: int) -> list[int]:
        if not self.is_writer or self._allocate_fn is None:
            raise RuntimeError(f"{self.instance!r} does not write the {self.name!r} stream")
        # While an allocation is on its way, this writer's claim must not rise: the sequence may hand out a
        # position below what another writer announces meanwhile.
        if self._allocating == 0:
            self._frozen = self._claims[self.instance]
        self._allocating += 1
        try:
            positions = sorted(int(p) for p in await self._allocate_fn(n))
        finally:
            self._allocating -= 1
        for p in positions:
            heapq.heappush(self._unfinished, p)
        if positions:
            self._known = max(self._known, positions[-1])
        self._recompute()
        return positions

    def begin_txn_allocation(self) -> None:
        """Positions are about to be taken from the sequence inside a transaction: freeze this writer's claim."""
        if not self.is_writer:
            raise RuntimeError(f"{self.instance!r} does not write the {self.name!r} stream")
        if self._allocating == 0:
            self._frozen = self._claims[self.instance]
        self._allocating += 1

    def end_txn_allocation(self, positions: list[int]) -> None:
        """The transaction is over: ``positions`` (what it took; [] if it failed) are unfinished until :meth:`finish`."""
        for p in positions:
            heapq.heappush(self._unfinished, p)
        if positions:
            self._known = max(self._known, max(positions))
        self._allocating -= 1
        self._recompute()

    def allocate_many(self, n: int) -> list[int]:
        raise RuntimeError("positions of a multi-writer stream come from the database: use allocate_many_async")

    def allocate(self) -> int:
        raise RuntimeError("positions of a multi-writer stream come from the database: use allocate_many_async")

    def finish(self, position: int) -> int:
        self._finished.add(position)
        while self._unfinished and self._unfinished[0] in self._finished:
            self._finished.discard(heapq.heappop(self._unfinished))
        self._recompute()
        return self._current

    def _own_claim(self) -> int:
        if self._allocating:
            return min(self._frozen, self._unfinished[0] - 1) if self._unfinished else self._frozen
        if self._unfinished:
            return self._unfinished[0] - 1
        return self._known

    def writer_position(self) -> int:
        """This writer's claim (what it announces and persists); for a non-writer, the readable position."""
        return self._claims[self.instance] if self.is_writer else self._current

    def claim_raised(self) -> bool:
        """Has this writer's claim risen since it was last announced (:meth:`announced`)?"""
        return self.is_writer and self._claims[self.instance] > self._announced

    def announced(self, position: int) -> None:
        self._announced = max(self._announced, position)

    # ---- every process ----
    def on_claim(self, writer: str, position: int) -> bool:
        """Writer ``writer`` claims ``position`` (replication, or its persisted row). True if :meth:`current` rose."""
        if writer == self.instance and self.is_writer:
            return False
        before = self._current
        self._known = max(self._known, position)
        if writer in self._claims and position > self._claims[writer]:
            self._claims[writer] = position
        self._recompute()
        return self._current > before

    def _recompute(self) -> None:
        if self.is_writer:
            self._claims[self.instance] = max(self._claims[self.instance], self._own_claim())
        before = self._current
        self._current = min(self._claims.values())
        if self._current > before:
            for fn in self._advance_listeners:
                fn(self.name, self._current)

    def claims(self) -> dict[str, int]:
        return dict(self._claims)

    def current(self) -> int:
        return self._current

    def known(self) -> int:
        """The highest position seen anywhere (a notification above :meth:`current` waits until it is readable)."""
        return self._known

    def advance_to(self, position: int) -> None:
        """Single-writer API: for a multi-writer stream, positions advance per writer (:meth:`on_claim`)."""

    def follow_from(self, position: int) -> None:
        """Single-writer API: start claims come from the persisted per-writer rows instead."""

    def __repr__(self) -> str:
        return f"MultiWriterIdGenerator({self.name!r}, current={self._current}, claims={self._claims})"


def describe(gens: dict[str, StreamIdGenerator]) -> dict[str, Any]:
    return {name: gen.current() for name, gen in gens.items()}
