"""An event persister (``sup worker event_persister``): writes the events of the rooms it owns.

A room's persister is ``deployment.persister_for(room_id)`` (SHA-256 of the room id modulo the number of
persisters, docs/workers.md). Other processes forward sends, state, membership changes, redactions and
createRoom of its rooms over the internal API (its ``internal`` URL, shared secret); it builds, checks and
commits them with positions from the PostgreSQL sequence, and announces them by replication. It serves no
public endpoints beyond /health and /metrics, and runs no background job. It applies the federation writes of its
rooms too (PDUs of ``/send``, send_join/leave/knock, invites: forwarded by main or a ``federation_inbound`` worker,
``workers/federation_inbound.py``), and runs the joins of its rooms' users into other servers' rooms.
"""

from workers.roles import ROOM_BASE, worker

ROLE = worker(
    "event_persister",
    areas=(
        *ROOM_BASE,
        "messaging",
        "federation_transport",  # federation PDUs and membership of its rooms (fedroles)
        "federation_events",
        "room_writer",
        "replication",
    ),
    description="writes the events of the rooms of its shard (internal API)",
)
