"""Declared process roles.

A *role* (``workers/roles/<role>.py``) is an explicit, ordered list of *areas*; an area is a
wiring module (``workers/wiring/<area>.py``) whose module-level ``AREA`` declares what it
``needs`` from the core (attributes earlier areas must have set), what it ``provides``
(attributes its ``wire(core)`` must set) and what it ``uses`` if present (optional).

:func:`check_role` proves a role complete before anything is built, and the composition root
(``workers/app.py``) enforces the declarations while wiring: reading an undeclared, absent
attribute inside ``wire()`` raises :class:`MissingDependency` instead of silently getting
``None`` from ``getattr(core, X, None)``; an area that does not set what it promised fails too.
Wiring modules without an ``AREA`` (new areas under construction) are wired unchecked.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

# What every Core has before any area runs (workers/core.py).
BASE_ATTRIBUTES: frozenset[str] = frozenset({
    "config", "reactor", "clock", "db", "signing_key", "server_name", "notifier", "streams", "background",
    "caches", "role", "instance", "deployment", "replication", "internal_api",
})


class MissingDependency(RuntimeError):
    """A role is incomplete: an area needs something no earlier area of the role provides.

    Deliberately not an AttributeError, so ``getattr(core, X, None)`` cannot swallow it."""


@dataclass(frozen=True)
class Area:
    """The contract of one wiring module."""

    name: str
    needs: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()


@dataclass(frozen=True)
class Role:
    """One kind of process: the areas it wires, in order, and the listener resources it serves."""

    name: str
    modules: tuple[str, ...]
    resources: tuple[str, ...] = ("client",)
    description: str = ""
    # Background jobs this role runs ("*": all). Jobs: pushers, media_jobs, e2e_cleanup, prune_txn_ids,
    # redacted_content_purge, presence_timeouts, sliding_sync_expiry. Each job runs in exactly one role of a deployment.
    jobs: tuple[str, ...] = ("*",)
    # Route names (exact, or prefix ending in "*") this role serves on its public listener; empty = every
    # route of its resources. ``sup generate-routes`` turns these into the reverse proxy's map.
    routes: tuple[str, ...] = ()

    def runs(self, job: str) -> bool:
        return "*" in self.jobs or job in self.jobs

    def serves(self, route_name: str, method: str | None = None) -> bool:
        """Entries are a route name ("room_messages"), a name prefix ("admin_*"), or "METHOD name" when
        several routes share a name ("GET sync": not sliding sync's POST)."""
        if not self.routes:
            return True
        for r in self.routes:
            want_method, _, name = r.rpartition(" ")
            if want_method and method is not None and want_method != method:
                continue
            if route_name == name or (name.endswith("*") and route_name.startswith(name[:-1])):
                return True
        return False


def wiring(*areas: str) -> tuple[str, ...]:
    """The wiring modules (``workers/wiring/<area>.py``) of ``areas``, in the same order."""
    return tuple(f"workers.wiring.{a}" for a in areas)


#: The areas every role that reads rooms starts with, in this order (each needs the ones before it).
ROOM_BASE = ("foundation", "accounts", "rooms", "sync")
#: The public routes of a worker that serves no client endpoint.
HEALTH_ONLY = ("health", "metrics")


def worker(name: str, areas: tuple[str, ...], description: str, *, resources: tuple[str, ...] = ("client", "metrics"),
           jobs: tuple[str, ...] = (), routes: tuple[str, ...] = HEALTH_ONLY) -> Role:
    """A worker role: its areas by name, in order; unless it says otherwise it runs no background job and serves
    only /health and /metrics (``Role``'s own defaults, every job and every route, are the all-in-one process's)."""
    return Role(name, wiring(*areas), resources=resources, description=description, jobs=jobs, routes=routes)


def area_of(module: ModuleType) -> Area | None:
    area = getattr(module, "AREA", None)
    return area if isinstance(area, Area) else None


def load_modules(modules: tuple[str, ...] | list[str]) -> list[ModuleType]:
    return [importlib.import_module(m) for m in modules]


def providers(modules: list[ModuleType]) -> dict[str, str]:
    """core attribute -> the declared area of ``modules`` that provides it."""
    out: dict[str, str] = {}
    for module in modules:
        area = area_of(module)
        if area is not None:
            for attr in area.provides:
                out.setdefault(attr, area.name)
    return out


def check_role(name: str, modules: tuple[str, ...] | list[str]) -> list[ModuleType]:
    """Import the role's modules and verify every declared need is provided earlier. Raises MissingDependency."""
    loaded = load_modules(modules)
    provided: dict[str, str] = dict.fromkeys(BASE_ATTRIBUTES, "core")
    problems: list[str] = []
    for module in loaded:
        area = area_of(module)
        if area is None:
            continue
        for need in area.needs:
            if need not in provided:
                problems.append(f"area {area.name!r} needs core.{need}, which no earlier area of role {name!r} provides")
        for attr in area.provides:
            provided.setdefault(attr, area.name)
    if problems:
        raise MissingDependency("; ".join(problems))
    return loaded


def get_role(name: str) -> Role:
    """The role called ``name`` (``workers/roles/<name>.py``, attribute ``ROLE``)."""
    if not name.replace("_", "").isalnum():
        raise KeyError(name)
    try:
        module = importlib.import_module(f"workers.roles.{name}")
    except ModuleNotFoundError as e:
        if e.name == f"workers.roles.{name}":
            raise KeyError(name) from None
        raise
    role = getattr(module, "ROLE", None)
    if not isinstance(role, Role):
        raise KeyError(name)
    return role


ROLE_NAMES = ("main", "client", "sync", "event_persister", "federation_inbound", "federation_sender", "media", "pusher", "background")
