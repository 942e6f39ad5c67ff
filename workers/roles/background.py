"""A background worker (``sup worker background``): the periodic maintenance jobs off the main process.

Transaction-id pruning, the redacted-content purge and the E2E cleanup (to-device expiry, device-list
compaction, claimed key ids). Main stops running them when a deployment has a background instance.
It serves no client endpoints, only /health and /metrics.
"""

from workers.roles import Role

ROLE = Role(
    "background",
    modules=(
        "workers.wiring.foundation",
        "workers.wiring.accounts",
        "workers.wiring.rooms",
        "workers.wiring.sync",
        "workers.wiring.messaging",
        "workers.wiring.e2e",
        "workers.wiring.replication",
    ),
    resources=("client", "metrics"),
    description="maintenance jobs: transaction-id pruning, redacted-content purge, E2E cleanup",
    jobs=("prune_txn_ids", "redacted_content_purge", "e2e_cleanup", "retention_purge", "stories_purge", "federation_cleanup"),
    routes=("health", "metrics"),
)
