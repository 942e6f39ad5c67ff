"""The composition root's container: built once per process, never seen by library code.

Each area's wiring module (``workers/wiring/*.py``) constructs its services with
explicit constructor arguments taken from here, stores the ones other areas
need as attributes, and registers its routes for a listener resource.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Callable, Iterator

from homeserver.clock import Clock
from homeserver.config import Config
from homeserver.http.router import Router
from homeserver.notifier import Notifier
from homeserver.types.background import BackgroundRunner
from homeserver.types.caches import CACHES, CacheRegistry
from storage.database import Database
from storage.streams import StreamIdGenerator
from workers.internal_api import InternalApi
from workers.roles import Area, MissingDependency, Role, get_role

RouteRegistrar = Callable[[Router], None]
logger = logging.getLogger(__name__)


class Core:
    """Everything one process is made of. Attributes beyond the foundation ones are set by wiring modules.

    While a declared area wires (:meth:`wiring`), reading an attribute that is absent and not in the
    area's ``uses`` raises :class:`~workers.roles.MissingDependency` (``getattr(core, X, None)``
    cannot hide a missing dependency); outside wiring, absent attributes are ordinary AttributeErrors."""

    def __init__(self, config: Config, reactor: Any, clock: Clock, db: Database, signing_key: Any) -> None:
        self.config = config
        self.reactor = reactor
        self.clock = clock
        self.db = db
        self.signing_key = signing_key
        self.server_name: str = config.server_name
        self.notifier = Notifier(clock)
        self.background = BackgroundRunner(config.server_name)
        self.caches: CacheRegistry = CACHES
        self.role = "main"
        self.instance = "main"
        self.deployment: Any = None  # workers.deployment.Deployment when run as one of several processes
        self.replication: Any = None  # workers.replication.Replication when Redis replication is on
        # Endpoints other processes call (workers/internal_api.py); served on the instance's internal listener only.
        self.internal_api = InternalApi("")
        self._area: Area | None = None
        self.role_spec: Role | None = None  # set by the composition root
        # Stream name -> position generator. Owners create theirs in their wiring:
        # "events", "account_data", "typing", "receipts", "presence", "to_device", "device_lists".
        self.streams: dict[str, StreamIdGenerator] = {}
        self._registrars: dict[str, list[RouteRegistrar]] = {}
        self._raw_resources: dict[str, dict[str, Callable[[], Any]]] = {}
        self._startup_hooks: list[Callable[[], Any]] = []
        self._shutdown_hooks: list[Callable[[], Any]] = []

    def __getattr__(self, name: str) -> Any:
        area = self.__dict__.get("_area")
        if area is not None and not name.startswith("__") and name not in area.uses:
            provider = self.__dict__.get("_providers", {}).get(name)
            if provider is not None:  # a declared area provides it, but not before this one: an ordering bug
                raise MissingDependency(
                    f"area {area.name!r} of role {self.__dict__.get('role')!r} reads core.{name} before area {provider!r} "
                    f"provides it; declare it in the area's needs and wire {provider!r} first, or in its uses"
                )
            warned = self.__dict__.setdefault("_undeclared", set())
            if (area.name, name) not in warned:  # an undeclared area's attribute: allowed, but say so once
                warned.add((area.name, name))
                logger.info("area %r reads core.%s without declaring it in needs/uses", area.name, name)
        raise AttributeError(name)

    @contextlib.contextmanager
    def wiring(self, area: Area | None) -> Iterator[None]:
        """Enforce ``area``'s declaration while its ``wire(core)`` runs."""
        self._area = area
        try:
            yield
        finally:
            self._area = None
        if area is not None:
            missing = [a for a in area.provides if a not in self.__dict__]
            if missing:
                raise MissingDependency(f"area {area.name!r} declares it provides {', '.join('core.' + m for m in missing)} but did not set them")

    def runs(self, job: str) -> bool:
        """Does this process run the background job ``job``? Each job runs in one role of a deployment:
        a role that runs every job ("*", main) leaves a job to a dedicated instance whose role names it."""
        spec = self.role_spec
        if spec is None:
            return True
        if not spec.runs(job):
            return False
        if self.deployment is not None and "*" in spec.jobs:
            for inst in self.deployment.instances.values():
                if inst.role == spec.name:
                    continue
                try:
                    other = get_role(inst.role)
                except KeyError:
                    continue
                if job in other.jobs:
                    return False
        return True

    def require(self, *names: str) -> None:
        """Fail now unless every attribute in ``names`` is set."""
        missing = [n for n in names if n not in self.__dict__]
        if missing:
            raise MissingDependency(f"role {self.role!r} lacks {', '.join('core.' + m for m in missing)}")

    def on_resource(self, resource: str, registrar: RouteRegistrar) -> None:
        """Register routes on every listener that serves ``resource`` (client, federation, media, keys, admin, metrics)."""
        self._registrars.setdefault(resource, []).append(registrar)

    def on_raw_resource(self, resource: str, path: str, factory: Callable[[], Any]) -> None:
        """Serve the exact ``path`` on listeners with ``resource`` by a twisted.web resource of its own
        (``factory()`` is called once per listener). For protocols that take over the connection, such as
        the WebSocket endpoint; ordinary JSON endpoints use :meth:`on_resource`."""
        self._raw_resources.setdefault(resource, {})[path] = factory

    def build_raw_resources(self, resources: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.role_spec is not None and not self.role_spec.serves("websocket"):
            return out
        for resource in resources:
            for path, factory in self._raw_resources.get(resource, {}).items():
                if path not in out:
                    out[path] = factory()
        return out

    def build_router(self, resources: list[str]) -> Router:
        router = Router()
        seen: list[RouteRegistrar] = []
        for resource in resources:
            for registrar in self._registrars.get(resource, []):
                if registrar not in seen:  # bound methods compare equal by instance + function
                    seen.append(registrar)
                    registrar(router)
        if self.role_spec is not None and self.role_spec.routes:
            router = router.only(self.role_spec.serves)
        return router

    def every(self, job: str, fn: Callable[[], Any], interval_s: float) -> None:
        """Run the background job ``job`` (``fn``) every ``interval_s`` seconds once listeners are up, the first
        run one interval after start; only if this process runs it (:meth:`runs`)."""
        if self.runs(job):
            self.on_startup(lambda: self.background.looping(job, fn, interval_s, self.clock, now=False))

    def on_startup(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` (may return an awaitable) once listeners are up: background jobs etc."""
        self._startup_hooks.append(fn)

    def on_shutdown(self, fn: Callable[[], Any]) -> None:
        self._shutdown_hooks.append(fn)

    @property
    def startup_hooks(self) -> list[Callable[[], Any]]:
        return list(self._startup_hooks)

    @property
    def shutdown_hooks(self) -> list[Callable[[], Any]]:
        return list(self._shutdown_hooks)
