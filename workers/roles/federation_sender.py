"""A federation sender (``sup worker federation_sender``): the outbound federation queues, off the main process.

Each destination server belongs to one sender instance (a stable hash of its name over the
``federation_sender`` instances of the deployment file, ``Deployment.federation_sender_for``). An instance
follows the events stream by replication and reads our users' events back from the database by position, with
its own persisted fan-out position (``federation_sender_position`` row ``events:<instance>``); it follows the
typing, receipts and presence streams to queue those EDUs, and sends the durable EDU outbox (to-device,
device lists) of its destinations. Per destination: transactions, backoff, catch-up, as in one process
(``federation/outbound/sender.py``). Main sends nothing when a sender instance exists
(``workers/federation_sharding.py``). It serves no client endpoints, only /health and /metrics.
"""

from workers.roles import ROOM_BASE, worker

ROLE = worker(
    "federation_sender",
    areas=(
        *ROOM_BASE,  # sync: typing, receipts, presence: followed by replication for their EDUs
        "federation_transport",
        "replication",
    ),
    description="outbound federation: per-destination queues, transactions, backoff, EDUs (sharded by destination)",
)
