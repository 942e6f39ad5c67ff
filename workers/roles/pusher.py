"""A pusher worker (``sup worker pusher``): sends push notifications (HTTP and email pushers).

It follows the events stream by replication and pokes the durable push service (its positions are in
the database, so it resumes where it stopped). Main stops running the pushers when a deployment has
a pusher instance. It serves no client endpoints, only /health and /metrics.
"""

from workers.roles import Role

ROLE = Role(
    "pusher",
    modules=(
        "workers.wiring.foundation",
        "workers.wiring.accounts",
        "workers.wiring.rooms",
        "workers.wiring.sync",
        "workers.wiring.email",  # email pushers (digests) need the mailer and templates
        "workers.wiring.push",
        "workers.wiring.replication",
    ),
    resources=("client", "metrics"),
    description="push notifications",
    jobs=("pushers",),
    routes=("health", "metrics"),
)
