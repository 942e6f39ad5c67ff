"""A background worker (``sup worker background``): the periodic maintenance jobs off the main process.

Transaction-id pruning, the redacted-content purge, the E2E cleanup (to-device expiry, device-list
compaction, claimed key ids), the retention purge, the stories purge and the federation cleanup (expired
outbox EDUs, old verify keys). Main stops running them when a deployment has a background instance, so
the role wires every area that schedules one of its jobs (a unit test checks it). It serves no client
endpoints, only /health and /metrics.
"""

from workers.roles import ROOM_BASE, worker

ROLE = worker(
    "background",
    areas=(
        *ROOM_BASE,
        "messaging",
        "e2e",
        "contacts",
        "stories",
        "retention",
        "federation_cleanup",
        "replication",
    ),
    description="maintenance jobs: txn-id pruning, redacted-content, retention and stories purges, E2E and federation cleanup",
    jobs=("prune_txn_ids", "redacted_content_purge", "e2e_cleanup", "retention_purge", "stories_purge", "federation_cleanup"),
)
