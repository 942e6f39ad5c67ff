"""A sync worker (``sup worker sync``): long-poll ``/sync``, sliding sync, the legacy ``/events`` and the WebSocket.

It wires every area a sync response reads (rooms, account data, push counts, E2E, relations) but
writes no stream and runs no background job: positions, typing, presence and cache invalidations
arrive by replication, and presence reports go to the presence writer.
"""

from workers.roles import ROOM_BASE, worker

ROLE = worker(
    "sync",
    areas=(
        *ROOM_BASE,
        "messaging",
        "push",
        "e2e",
        "compat",
        "sliding_sync",
        "replication",
    ),
    description="/sync long-polls, the legacy /events stream and the sync WebSocket",
    routes=("sync", "sliding_sync", "legacy_events", "legacy_initial_sync", "legacy_room_initial_sync", "versions", "health", "metrics", "websocket"),
)
