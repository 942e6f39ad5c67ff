"""A pusher worker (``sup worker pusher``): sends push notifications (HTTP and email pushers).

It follows the events stream by replication and pokes the durable push service (its positions are in
the database, so it resumes where it stopped). Main stops running the pushers when a deployment has
a pusher instance. It serves no client endpoints, only /health and /metrics.
"""

from workers.roles import ROOM_BASE, worker

ROLE = worker(
    "pusher",
    areas=(
        *ROOM_BASE,
        "email",  # email pushers (digests) need the mailer and templates
        "push",
        "replication",
    ),
    description="push notifications",
    jobs=("pushers",),
)
