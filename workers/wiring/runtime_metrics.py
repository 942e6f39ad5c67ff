"""Process-health metrics (homeserver/runtime_metrics.py): reactor lag, GC pauses, persister batch sizes."""

from __future__ import annotations

from homeserver.runtime_metrics import ReactorLagProbe, install_gc_timer, observe_persisted
from workers.core import Core


def wire(core: Core) -> None:
    install_gc_timer()
    probe = ReactorLagProbe(core.clock)
    core.on_startup(probe.start)
    core.on_shutdown(probe.stop)
    persister = getattr(core, "persister", None)
    if persister is not None and hasattr(persister, "add_hook"):
        persister.add_hook(observe_persisted)
