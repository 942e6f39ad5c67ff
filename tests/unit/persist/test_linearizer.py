"""The per-key lock under the persister's turn and ``linearizer.queue``: taken at once when free, FIFO otherwise."""

from __future__ import annotations

from twisted.internet import defer

from storage.persistence.linearizer import Linearizer


def test_try_acquire_takes_a_free_key_only() -> None:
    lin = Linearizer()
    assert lin.try_acquire("a")
    assert not lin.try_acquire("a")
    assert lin.try_acquire("b")  # keys are independent
    lin.release("a")
    assert lin.try_acquire("a")


def test_queue_runs_waiters_in_arrival_order() -> None:
    lin = Linearizer()
    order: list[str] = []
    gates = {name: defer.Deferred() for name in ("first", "second", "third")}

    async def work(name: str) -> None:
        async with lin.queue("room"):
            order.append(f"{name} in")
            await gates[name]
            order.append(f"{name} out")

    runs = [defer.ensureDeferred(work(name)) for name in ("first", "second", "third")]
    assert order == ["first in"]  # the others wait: the key is busy
    gates["second"].callback(None)  # finishing early does not let a waiter jump the queue
    assert order == ["first in"]
    gates["first"].callback(None)
    assert order == ["first in", "first out", "second in", "second out", "third in"]
    gates["third"].callback(None)
    assert all(r.called for r in runs)
    assert lin.try_acquire("room")  # released at the end


def test_cancelled_waiter_leaves_the_queue() -> None:
    lin = Linearizer()
    assert lin.try_acquire("room")
    waiting = defer.ensureDeferred(lin.acquire("room"))
    waiting.cancel()
    waiting.addErrback(lambda f: f.trap(defer.CancelledError))
    lin.release("room")
    assert lin.try_acquire("room")  # nobody was handed the lock
