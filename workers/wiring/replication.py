"""Replication area: joins this process to its deployment over Redis (workers/replication.py).

Wired last in every role. Does nothing in a single-process server (no deployment file); with one,
it announces what this instance writes and follows what the others write.
"""

from __future__ import annotations

from workers.core import Core
from workers.replication import start_replication
from workers.roles import Area

AREA = Area("replication", provides=(), uses=("persister", "typing", "presence", "sync_handler", "recent_timelines"))


def wire(core: Core) -> None:
    deployment = core.deployment
    if deployment is None:
        return
    writes = deployment.streams_written_by(core.instance)
    core.replication = start_replication(core, core.instance, writes, deployment)
