"""The federation sender in a deployment of several processes (issue 18's ``federation_sender`` role).

With ``federation_sender`` instances in the deployment file, each destination server belongs to exactly one of
them (``Deployment.federation_sender_for``: a stable hash of the server name); main and every other process send
nothing. Their write paths still reach the sender:

- **events**: the sender worker follows the events stream by replication and reads our users' events back from
  the database by position (``FederationSender.follow``), with its own persisted fan-out position;
- **durable EDUs** (to-device, device lists): written into ``federation_edu_outbox`` by the writer's transaction;
  the writer publishes a ``fed wake`` command, and the sender also polls the outbox by row id (a lost command
  costs latency, never an EDU);
- **typing, receipts, presence**: the sender worker follows those streams by replication and its own EDU
  listeners queue them, exactly as in one process;
- **"that server contacted us"**: the process that authenticated the request publishes ``fed contact``; the
  owning sender ends that destination's backoff.

Without sender instances, main runs the sender as in a single process, and other processes that authenticate
federation requests (``federation_inbound``) forward the contact and wake-ups to it the same way.
"""

from __future__ import annotations

import logging
from typing import Any

from federation.outbound.sender import FederationSender

logger = logging.getLogger(__name__)

CONTACT_EVERY_S = 1.0  # at most one "contacted us" command per origin and second
FOLLOW_CHECK_S = 1.0  # the events stream is checked this often even without a replication message
EDU_POLL_S = 2.0


def runs_sender(core: Any) -> bool:
    """Does this process run a (shard of the) federation sender?"""
    deployment = core.deployment
    if deployment is None:
        return True
    if deployment.federation_senders():
        return core.role == "federation_sender"
    return core.role == "main"


class RemoteFederationSender:
    """What a process that does not send sees as ``core.federation_sender``: every input becomes a replication
    command for the process that sends (no queue, no transaction here)."""

    enabled = True

    def __init__(self, core: Any, room_servers: Any) -> None:
        self._core = core
        self.room_servers = room_servers  # the inbound EDU checks ask it who is in a room
        self._contacts: dict[str, float] = {}

    def _command(self, kind: str, destination: str) -> None:
        rep = self._core.__dict__.get("replication")
        if rep is not None:
            rep.command("fed", kind, destination)

    def wake(self, destination: str) -> None:
        self._command("wake", destination)

    def on_remote_contact(self, origin: str) -> None:
        now = self._core.clock.time()
        if self._contacts.get(origin, 0.0) > now:
            return
        if len(self._contacts) > 10_000:
            self._contacts.clear()
        self._contacts[origin] = now + CONTACT_EVERY_S
        self._command("contact", origin)

    def send_edu(self, destination: str, edu_type: str, content: dict[str, Any], key: Any = None) -> None:
        """Not reached: typing, receipts and presence EDUs are queued by the sender worker's own listeners."""

    async def on_events(self, rows: Any, position: int = 0) -> None:
        return None

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def status(self, destination: str) -> dict[str, Any]:
        return {}


def sender_position_name(core: Any) -> str:
    return f"events:{core.instance}" if core.role == "federation_sender" else "events"


def attach_commands(core: Any, sender: FederationSender) -> None:
    """The sending process applies the others' ``fed`` commands (called once replication exists)."""
    rep = core.__dict__.get("replication")
    if rep is None:
        return

    def apply(args: list[Any]) -> None:
        if len(args) != 2 or not isinstance(args[1], str):
            return
        kind, destination = args
        if not sender.owns(destination):
            return
        if kind == "wake":
            sender.wake(destination)
        elif kind == "contact":
            sender.on_remote_contact(destination)

    rep.on_command("fed", apply)


def follow_events(core: Any, sender: FederationSender) -> None:
    """A sender worker: fan out as the events stream advances (replication notifies), check every second anyway,
    and poll the durable EDU outbox."""
    state = {"running": False, "again": False}

    async def run() -> None:
        state["running"] = True
        try:
            while True:
                state["again"] = False
                await sender.follow()
                if not state["again"]:
                    return
        finally:
            state["running"] = False

    def kick() -> None:
        if state["running"]:
            state["again"] = True
            return
        core.background.spawn("federation_sender_follow", run())

    def on_notify(stream: str, position: int, users: Any, rooms: Any) -> None:
        if stream == "events":
            kick()

    core.notifier.add_listener(on_notify)

    async def check() -> None:
        kick()

    async def started() -> None:
        attach_commands(core, sender)
        for attempt in range(1, 1_000_000):
            try:
                await sender.start()
                break
            except Exception:  # the database is unreachable at start: try again, a sender that gave up sends nothing
                logger.exception("federation sender could not start (attempt %d); retrying in 5 s", attempt)
                await core.clock.sleep(5)
        core.background.looping("federation_sender_check", check, FOLLOW_CHECK_S, core.clock, now=False)
        core.background.looping("federation_sender_edu_poll", sender.poll_edus, EDU_POLL_S, core.clock, now=False)
        kick()

    core.on_startup(started)
