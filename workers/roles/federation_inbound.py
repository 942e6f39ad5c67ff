"""The federation API on a worker (``sup worker federation_inbound``): ``/_matrix/federation/*`` and ``/_matrix/key/*``.

Reads are answered here from the database (events, state, backfill, make_join/leave/knock, queries, user keys,
media, public rooms, hierarchy); writes (the PDUs and EDUs of ``/send``, send_join, send_leave, send_knock,
invite) are forwarded over the internal API to the process that owns them (``workers/federation_inbound.py``):
each room's event writer, and main for the EDUs. Several instances may run side by side (nothing here is
per-instance state beyond caches kept coherent by replication).
"""

from workers.roles import ROOM_BASE, worker

ROLE = worker(
    "federation_inbound",
    areas=(
        *ROOM_BASE,
        "messaging",
        "federation_transport",
        "federation_events",
        "e2e",
        "media",
        "replication",
    ),
    resources=("client", "federation", "keys", "metrics"),
    description="the federation API: reads served here, writes forwarded to their owner",
    routes=("federation_*", "key_v2_*", "health", "metrics"),
)
