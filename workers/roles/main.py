"""The all-in-one process (``sup run``, ``sup worker main``): every area, every resource."""

from workers.roles import Role

ROLE = Role(
    "main",
    modules=(
        "workers.wiring.foundation",
        "workers.wiring.accounts",
        "workers.wiring.rooms",
        "workers.wiring.sync",
        "workers.wiring.messaging",
        "workers.wiring.email",
        "workers.wiring.push",
        "workers.wiring.federation_transport",
        "workers.wiring.federation_events",
        "workers.wiring.federation_cleanup",
        "workers.wiring.e2e",
        "workers.wiring.media",
        "workers.wiring.compat",
        "workers.wiring.contacts",
        "workers.wiring.stories",
        "workers.wiring.retention",
        "workers.wiring.sliding_sync",
        "workers.wiring.admin",
        "workers.wiring.room_writer",
        "workers.wiring.runtime_metrics",
        "workers.wiring.replication",
    ),
    resources=("client", "federation", "keys", "media", "admin", "metrics"),
    description="everything in one process (the default)",
)
