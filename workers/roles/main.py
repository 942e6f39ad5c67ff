"""The all-in-one process (``sup run``, ``sup worker main``): every area, every resource."""

from workers.roles import ROOM_BASE, Role, wiring

ROLE = Role(
    "main",
    modules=wiring(
        *ROOM_BASE,
        "messaging",
        "email",
        "push",
        "federation_transport",
        "federation_events",
        "federation_cleanup",
        "e2e",
        "media",
        "compat",
        "contacts",
        "stories",
        "retention",
        "sliding_sync",
        "admin",
        "room_writer",
        "runtime_metrics",
        "replication",
    ),
    resources=("client", "federation", "keys", "media", "admin", "metrics"),
    description="everything in one process (the default)",
)
