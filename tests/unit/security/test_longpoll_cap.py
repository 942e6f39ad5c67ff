"""Finding 24 (per-user long-poll cap): one user's long-polls cannot take the server-wide waiter pool."""

from __future__ import annotations

from twisted.internet import defer

from homeserver.notifier import Notifier


def test_one_user_cannot_hold_the_waiter_pool(fake_clock):
    n = Notifier(fake_clock, max_waiters=100, max_waiters_per_user=5)
    hog = [defer.ensureDeferred(n.wait("@hog:x", [], 30_000)) for _ in range(40)]
    assert n.waiter_count() == 5
    assert sum(1 for d in hog if d.called) == 35  # the oldest answered (empty), clients re-poll
    other = defer.ensureDeferred(n.wait("@other:x", ["!r:x"], 30_000))
    assert not other.called
    n.notify("events", 1, rooms=["!r:x"])
    assert other.called and other.result == "events"
