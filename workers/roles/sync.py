"""A sync worker (``sup worker sync``): long-poll ``/sync``, sliding sync, the legacy ``/events`` and the WebSocket.

It wires every area a sync response reads (rooms, account data, push counts, E2E, relations) but
writes no stream and runs no background job: positions, typing, presence and cache invalidations
arrive by replication, and presence reports go to the presence writer.
"""

from workers.roles import Role

ROLE = Role(
    "sync",
    modules=(
        "workers.wiring.foundation",
        "workers.wiring.accounts",
        "workers.wiring.rooms",
        "workers.wiring.sync",
        "workers.wiring.messaging",
        "workers.wiring.push",
        "workers.wiring.e2e",
        "workers.wiring.compat",
        "workers.wiring.sliding_sync",
        "workers.wiring.replication",
    ),
    resources=("client", "metrics"),
    description="/sync long-polls, the legacy /events stream and the sync WebSocket",
    jobs=(),
    routes=("sync", "sliding_sync", "legacy_events", "legacy_initial_sync", "legacy_room_initial_sync", "versions", "health", "metrics", "websocket"),
)
