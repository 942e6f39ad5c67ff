"""The multi-writer events stream (storage/streams.py:MultiWriterIdGenerator): readers see up to the
slowest writer's claim; an idle writer raises its claim to what it knows; an allocation on its way freezes it."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet import defer

from storage.streams import MultiWriterIdGenerator


class Sequence:
    """A PostgreSQL sequence stand-in; ``hold()`` makes the next allocation wait until released."""

    def __init__(self, start: int = 0) -> None:
        self.value = start
        self.held: defer.Deferred[None] | None = None

    async def allocate(self, n: int) -> list[int]:
        out = list(range(self.value + 1, self.value + n + 1))
        self.value += n
        if self.held is not None:
            await self.held
        return out


def run(coro: Any) -> Any:
    d = defer.ensureDeferred(coro)
    assert d.called, "the coroutine is blocked"
    out: list[Any] = []
    d.addBoth(out.append)
    if hasattr(out[0], "raiseException"):
        out[0].raiseException()
    return out[0]


def gens(seq: Sequence, start: int = 10) -> tuple[MultiWriterIdGenerator, MultiWriterIdGenerator, MultiWriterIdGenerator]:
    claims = {"p1": start, "p2": start}
    a = MultiWriterIdGenerator("events", "p1", ["p1", "p2"], claims, seq.allocate)
    b = MultiWriterIdGenerator("events", "p2", ["p1", "p2"], claims, seq.allocate)
    reader = MultiWriterIdGenerator("events", "main", ["p1", "p2"], claims)
    return a, b, reader


def test_readers_stop_below_an_unfinished_position_of_any_writer() -> None:
    seq = Sequence(10)
    a, b, reader = gens(seq)
    [p11] = run(a.allocate_many_async(1))
    [p12] = run(b.allocate_many_async(1))
    assert (p11, p12) == (11, 12)
    b.finish(p12)
    reader.on_claim("p2", b.writer_position())
    reader.on_claim("p1", a.writer_position())
    assert reader.current() == 10  # 11 is still being written by p1
    a.finish(p11)
    reader.on_claim("p1", a.writer_position())
    assert reader.current() == 11  # p1 has not heard of 12 yet: it claims what it knows
    a.on_claim("p2", b.writer_position())
    reader.on_claim("p1", a.writer_position())
    assert reader.current() == 12


def test_an_idle_writer_raises_its_claim_to_what_others_reached() -> None:
    seq = Sequence(10)
    a, b, reader = gens(seq)
    for _ in range(5):
        [p] = run(b.allocate_many_async(1))
        b.finish(p)
    reader.on_claim("p2", b.writer_position())
    assert reader.current() == 10  # p1 has not said anything yet
    a.on_claim("p2", b.writer_position())  # p1 hears of p2's writes while idle
    assert a.claim_raised() and a.writer_position() == 15
    a.announced(a.writer_position())
    assert not a.claim_raised()
    reader.on_claim("p1", a.writer_position())
    assert reader.current() == 15


def test_a_busy_writer_does_not_raise_its_claim_past_its_own_unfinished_position() -> None:
    seq = Sequence(10)
    a, b, _ = gens(seq)
    [p11] = run(a.allocate_many_async(1))
    [p12] = run(b.allocate_many_async(1))
    b.finish(p12)
    a.on_claim("p2", b.writer_position())
    assert a.writer_position() == 10 and a.current() == 10
    a.finish(p11)
    assert a.writer_position() == 12 and a.current() == 12


def test_an_allocation_on_its_way_freezes_the_claim() -> None:
    """p1 asks the sequence for a position (gets 11, answer delayed); meanwhile p2 writes 12 and p1 hears of it:
    p1 must not claim 12 while its 11 is not even known to it yet."""
    seq = Sequence(10)
    a, b, reader = gens(seq)
    seq.held = defer.Deferred()
    pending = defer.ensureDeferred(a.allocate_many_async(1))
    seq.held, gate = None, seq.held
    [p12] = run(b.allocate_many_async(1))
    b.finish(p12)
    a.on_claim("p2", b.writer_position())
    assert a.writer_position() == 10
    reader.on_claim("p1", a.writer_position())
    reader.on_claim("p2", b.writer_position())
    assert reader.current() == 10
    gate.callback(None)
    [p11] = pending.result
    assert p11 == 11 and a.writer_position() == 10
    a.finish(p11)
    assert a.writer_position() == 12


def test_abandoned_positions_count_as_finished() -> None:
    seq = Sequence(0)
    a, _, _ = gens(seq, start=0)
    ps = run(a.allocate_many_async(3))
    for p in reversed(ps):
        a.finish(p)
    assert a.writer_position() == 3


def test_claims_never_go_back_and_unknown_writers_are_ignored() -> None:
    reader = MultiWriterIdGenerator("events", "main", ["p1", "p2"], {"p1": 20, "p2": 30})
    assert reader.current() == 20
    reader.on_claim("p1", 5)
    reader.on_claim("main", 99)  # an old single-writer row: not a writer any more
    assert reader.claims() == {"p1": 20, "p2": 30}
    assert reader.on_claim("p1", 40) and reader.current() == 30


def test_a_follower_cannot_allocate() -> None:
    reader = MultiWriterIdGenerator("events", "main", ["p1"], {"p1": 1})
    with pytest.raises(RuntimeError):
        run(reader.allocate_many_async(1))
    with pytest.raises(RuntimeError):
        reader.allocate_many(1)


def test_allocation_inside_the_write_transaction_freezes_the_claim_until_the_positions_are_known() -> None:
    """The persister takes its positions from the sequence inside its transaction: p1 begins (will get 11), p2
    writes 12 meanwhile and p1 hears of it; p1's claim stays at 10 until its transaction has ended and 11 is done."""
    seq = Sequence(10)
    a, b, _ = gens(seq)
    a.begin_txn_allocation()
    p11 = seq.value + 1
    seq.value += 1  # what nextval gave inside p1's transaction
    [p12] = run(b.allocate_many_async(1))
    b.finish(p12)
    a.on_claim("p2", b.writer_position())
    assert a.writer_position() == 10
    a.end_txn_allocation([p11])
    assert a.writer_position() == 10  # 11 is committed but not finished (the in-memory view is advanced first)
    a.finish(p11)
    assert a.writer_position() == 12


def test_a_failed_transaction_abandons_its_positions() -> None:
    seq = Sequence(10)
    a, _, _ = gens(seq)
    a.begin_txn_allocation()
    seq.value += 2  # taken by the failed transaction, never written
    a.end_txn_allocation([])
    assert a.writer_position() == 10 and not a.claim_raised()
