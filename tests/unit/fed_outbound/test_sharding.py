"""Federation sender sharding (workers/deployment.py, workers/federation_sharding.py): every process computes the same
owner of a destination, the owners spread, and a process that does not send turns its inputs into commands."""

from __future__ import annotations

from typing import Any

from workers.deployment import parse
from workers.federation_sharding import RemoteFederationSender, runs_sender


def _dep(senders: dict[str, dict[str, Any]]) -> Any:
    return parse({"instances": {"main": {"role": "main"}, **{n: {"role": "federation_sender", **s} for n, s in senders.items()}}})


def test_owner_is_stable_and_spread() -> None:
    assert _dep({}).federation_sender_for("example.org") is None
    a = _dep({"fs1": {}, "fs2": {}, "fs3": {}})
    b = _dep({"fs3": {}, "fs1": {}, "fs2": {}})  # the file's order does not matter
    names = [f"server{i}.example" for i in range(600)]
    owners = [a.federation_sender_for(n) for n in names]
    assert owners == [b.federation_sender_for(n) for n in names]
    for inst in ("fs1", "fs2", "fs3"):
        assert owners.count(inst) > 120  # about a third each
    # shard numbers order the instances (renaming an instance with its shard keeps the split)
    c = _dep({"x": {"shard": 0}, "y": {"shard": 1}, "z": {"shard": 2}})
    assert c.federation_senders() == ["x", "y", "z"]
    mapping = {"fs1": "x", "fs2": "y", "fs3": "z"}
    assert [c.federation_sender_for(n) for n in names] == [mapping[o] for o in owners]


class _Rep:
    def __init__(self) -> None:
        self.sent: list[tuple[Any, ...]] = []

    def command(self, kind: str, *args: Any) -> None:
        self.sent.append((kind, *args))


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def time(self) -> float:
        return self.now


class _Core:
    def __init__(self, role: str, deployment: Any) -> None:
        self.role = role
        self.deployment = deployment
        self.replication = _Rep()
        self.clock = _Clock()


def test_who_sends_and_the_proxy_commands() -> None:
    with_senders = _dep({"fs1": {}})
    without = _dep({})
    assert runs_sender(_Core("federation_sender", with_senders)) and not runs_sender(_Core("main", with_senders))
    assert runs_sender(_Core("main", without)) and not runs_sender(_Core("federation_inbound", without))
    core = _Core("main", with_senders)
    proxy = RemoteFederationSender(core, room_servers=None)
    proxy.wake("a.example")
    proxy.on_remote_contact("b.example")
    proxy.on_remote_contact("b.example")  # within a second: not repeated
    core.clock.now += 1.5
    proxy.on_remote_contact("b.example")
    proxy.send_edu("c.example", "m.typing", {})  # queued by the sender worker's own listeners, not here
    assert core.replication.sent == [("fed", "wake", "a.example"), ("fed", "contact", "b.example"), ("fed", "contact", "b.example")]


def test_forwarded_transaction_parts_fit_the_internal_api() -> None:
    from workers.federation_inbound import split_for_internal

    pdus = [{"room_id": "!r:x", "n": i, "pad": "a" * 60_000} for i in range(50)]
    edus = [{"edu_type": "m.direct_to_device", "content": {"n": i, "pad": "b" * 60_000}} for i in range(100)]
    pieces = split_for_internal(pdus, edus, limit=1_000_000)
    assert len(pieces) > 1
    assert [p for ps, _ in pieces for p in ps] == pdus and [e for _, es in pieces for e in es] == edus  # order kept
    assert all(sum(len(str(x)) for x in ps + es) < 1_100_000 for ps, es in pieces)
    assert split_for_internal([], []) == [([], [])]
    assert split_for_internal(pdus[:2], []) == [(pdus[:2], [])]


def test_a_new_sender_takes_over_from_the_others_position(tmp_path: Any) -> None:
    """No position of its own: the lowest other sender worker's, else the single-process sender's, else none."""
    from storage.stores.federation_outbound import FederationOutboundStore
    from tests.harness import migrated_database, on_reactor

    with migrated_database("sqlite", str(tmp_path)) as db:
        new = FederationOutboundStore(db, "events:fs3")
        assert on_reactor(new.takeover_position) is None
        on_reactor(FederationOutboundStore(db).set_sender_position, 40)
        assert on_reactor(new.takeover_position) == 40
        on_reactor(FederationOutboundStore(db, "events:fs1").set_sender_position, 90)
        on_reactor(FederationOutboundStore(db, "events:fs2").set_sender_position, 70)
        assert on_reactor(new.takeover_position) == 70
