"""The presence writer's lease on reporting processes (sync workers), on a fake clock.

A sync worker reports "syncing" / "sync ended" and, every HEARTBEAT_S, "alive" with its running syncs. If it
dies, the writer stops hearing from it; after ORIGIN_LEASE_MS its syncs end, and its users go offline
OFFLINE_TIMEOUT_MS later, instead of staying online until the writer restarts.
"""

from __future__ import annotations

from homeserver.clock import FakeClock
from homeserver.handlers import presence as presence_mod
from tests.unit.sync.test_ephemeral_clock import _presence, _run

LEASE_S = presence_mod.ORIGIN_LEASE_MS / 1000
OFFLINE_S = presence_mod.OFFLINE_TIMEOUT_MS / 1000


def _tick(p: object, clock: FakeClock, seconds: float, heartbeat: dict[str, int] | None = None, origin: str = "sync1") -> None:
    """Advance in CHECK_INTERVAL_S steps, running the writer's timeout check (and the worker's heartbeat, if alive)."""
    step = presence_mod.CHECK_INTERVAL_S
    done = 0.0
    while done < seconds:
        clock.advance(step)
        done += step
        if heartbeat is not None:
            p.origin_alive(origin, heartbeat)  # type: ignore[attr-defined]
        p.check_timeouts()  # type: ignore[attr-defined]


def test_dead_sync_worker_users_go_offline() -> None:
    clock = FakeClock()
    p = _presence(clock)
    _run(p.user_syncing("@a:x", None, "sync1"))
    assert p.get_state("@a:x").state == "online"
    _tick(p, clock, 120, heartbeat={"@a:x": 1})  # alive and syncing: stays online
    assert p.get_state("@a:x").state == "online"
    # the worker dies (no sync_ended, no heartbeat): syncing ends with the lease, offline after the timeout
    _tick(p, clock, LEASE_S + OFFLINE_S + 2 * presence_mod.CHECK_INTERVAL_S)
    assert p.get_state("@a:x").state == "offline"


def test_live_worker_keeps_users_online_and_a_late_sync_end_is_not_counted_twice() -> None:
    clock = FakeClock()
    p = _presence(clock)
    _run(p.user_syncing("@a:x", None, "sync1"))
    _run(p.user_syncing("@a:x", None, "sync2"))
    _tick(p, clock, LEASE_S + 10, heartbeat={"@a:x": 1}, origin="sync2")  # sync1 silent: its sync ends
    p.sync_ended("@a:x", "sync1")  # late report from the expired origin: ignored (sync2's sync still counts)
    _tick(p, clock, OFFLINE_S + 30, heartbeat={"@a:x": 1}, origin="sync2")
    assert p.get_state("@a:x").state != "offline"
    p.sync_ended("@a:x", "sync2")
    _tick(p, clock, OFFLINE_S + 10)
    assert p.get_state("@a:x").state == "offline"


def test_heartbeat_heals_a_lost_sync_end() -> None:
    """Redis lost the "sync ended" report: the next heartbeat (no running syncs) ends it."""
    clock = FakeClock()
    p = _presence(clock)
    _run(p.user_syncing("@a:x", None, "sync1"))
    _tick(p, clock, 10, heartbeat={})  # alive, nothing running
    _tick(p, clock, OFFLINE_S + 10, heartbeat={})
    assert p.get_state("@a:x").state == "offline"


def test_worker_side_counts_running_syncs_for_its_heartbeat() -> None:
    clock = FakeClock()
    p = _presence(clock)
    sent: list[tuple[str, str]] = []
    p.forward = lambda kind, user, arg: sent.append((kind, user))
    _run(p.user_syncing("@a:x", None))
    _run(p.user_syncing("@a:x", None))
    _run(p.user_syncing("@b:x", None))
    p.sync_ended("@b:x")
    assert p.running_syncs() == {"@a:x": 2}
    assert sent == [("syncing", "@a:x"), ("syncing", "@a:x"), ("syncing", "@b:x"), ("sync_ended", "@b:x")]
