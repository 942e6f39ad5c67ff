"""Build and run one homeserver process: the composition root."""

from __future__ import annotations

import logging
import os
from typing import Any

from twisted.internet import defer

from homeserver.clock import Clock
from homeserver.config import Config
from homeserver.http.site import DispatchResource, SupSite
from homeserver.signing_key import load_or_create_signing_key
from storage.database import Database
from storage.engines import make_engine
from storage.migrations import apply_migrations
from storage.stores.server_facts import claim_fact_txn
from workers.core import Core
from workers.internal_api import InternalApi, listen_address
from workers.roles import area_of, check_role, get_role, providers

logger = logging.getLogger(__name__)

# Areas wired into the main process, in dependency order: declared in workers/roles/main.py
# (add a new area there; each module has ``wire(core)`` and an ``AREA`` declaration).
MAIN_PROCESS_WIRING = list(get_role("main").modules)


def open_database(config: Config, reactor: Any, application_name: str | None = None) -> Database:
    if config.database.engine == "sqlite":
        os.makedirs(os.path.dirname(os.path.abspath(config.sqlite_path)), exist_ok=True)
        engine = make_engine("sqlite", sqlite_path=config.sqlite_path)
    else:
        engine = make_engine("postgres", dsn=config.database.dsn)
        engine.application_name = application_name  # type: ignore[attr-defined]
    return Database(engine, reactor, pool_size=config.database.pool_max, max_retries=config.database.txn_retries)


class HomeServerApp:
    """One process: config → database (migrated) → services → listeners."""

    def __init__(self, config: Config, reactor: Any, wiring: list[str] | None = None, role: str = "main",
                 instance: str | None = None, deployment: Any = None) -> None:
        self.config = config
        self.reactor = reactor
        self.clock = Clock(reactor)
        os.makedirs(config.data_dir, exist_ok=True)
        self.signing_key = load_or_create_signing_key(config.signing_key_file)
        # a process of a deployment names its connections (``sup-<instance>``): see writer_gone_txn
        self.db = open_database(config, reactor, f"sup-{instance or role}" if deployment is not None else None)
        self.role = role
        self.role_spec = get_role(role)
        self.instance = instance or role
        self.deployment = deployment  # workers.deployment.Deployment: this process is one of several
        self._wiring = list(wiring) if wiring is not None else list(get_role(role).modules)
        self.core: Core | None = None
        self.ports: list[Any] = []
        self.sites: list[SupSite] = []

    def setup(self) -> Core:
        """Migrate the database and build every service (no listening yet)."""
        modules = check_role(self.role, self._wiring)  # a missing dependency fails here, before anything is built
        apply_migrations(self.db)
        self._check_server_name()
        core = Core(self.config, self.reactor, self.clock, self.db, self.signing_key)
        core.role, core.instance, core.role_spec, core.deployment = self.role, self.instance, self.role_spec, self.deployment
        if self.deployment is not None:
            core.internal_api = InternalApi(self.deployment.shared_secret)
        core._providers = providers(modules)
        for module in modules:
            with core.wiring(area_of(module)):
                module.wire(core)
        for name, generator in core.streams.items():
            core.notifier.track(name, generator)  # wake-ups wait until readers may read the notified position
        self.core = core
        return core

    def _check_server_name(self) -> None:
        stored = self.db.run_sync("check_server_name", claim_fact_txn, "server_name", self.config.server_name)
        if stored != self.config.server_name:
            raise RuntimeError(
                f"this database belongs to server_name {stored!r}, but the config says {self.config.server_name!r}"
            )

    def listen(self) -> list[Any]:
        """Start every configured listener. Returns the listening ports (port 0 = any free port)."""
        assert self.core is not None, "call setup() first"
        hard_limit = max(self.config.http.max_request_body, self.config.media.max_upload_size)
        for listener in self.config.listeners:
            router = self.core.build_router(listener["resources"])
            root = DispatchResource(
                router,
                self.config.http.max_request_body,
                cors=self.config.http.cors,
                listener_name=",".join(listener["resources"]),
                raw_resources=self.core.build_raw_resources(listener["resources"]),
            )
            site = SupSite(root, hard_limit, bool(listener.get("x_forwarded")), self.config.http.request_read_timeout / 1000)
            if listener["tls_certificate"]:
                from twisted.internet import ssl

                ctx = ssl.DefaultOpenSSLContextFactory(listener["tls_private_key"], listener["tls_certificate"])
                port = self.reactor.listenSSL(listener["port"], site, ctx, interface=listener["bind_address"])
            else:
                port = self.reactor.listenTCP(listener["port"], site, interface=listener["bind_address"])
            logger.info("listening on %s:%d for %s", listener["bind_address"], port.getHost().port, ", ".join(listener["resources"]))
            self.ports.append(port)
            self.sites.append(site)
        self._listen_internal()
        for hook in self.core.startup_hooks:
            self.core.background.spawn(f"startup:{getattr(hook, '__qualname__', 'hook')}", hook)
        return self.ports

    def _listen_internal(self) -> None:
        """The internal API (workers/internal_api.py) on the instance's ``internal`` address, apart from every
        public listener; only when the deployment file gives this instance one and some area registered an endpoint."""
        assert self.core is not None
        if self.deployment is None or not self.core.internal_api.endpoints():
            return
        url = self.deployment.instance(self.instance).internal
        if not url:
            return
        host, port_no = listen_address(url)
        root = DispatchResource(self.core.internal_api.router(), 4 * 1024 * 1024, listener_name="internal")
        site = SupSite(root, 4 * 1024 * 1024, False, self.config.http.request_read_timeout / 1000)
        port = self.reactor.listenTCP(port_no, site, interface=host)
        logger.info("internal API on %s:%d (%s)", host, port.getHost().port, ", ".join(self.core.internal_api.endpoints()))
        self.internal_port = port
        self.ports.append(port)
        self.sites.append(site)

    def port_for(self, resource: str) -> int:
        for listener, port in zip(self.config.listeners, self.ports):
            if resource in listener["resources"]:
                return port.getHost().port
        raise KeyError(resource)

    async def shutdown(self, grace_s: float | None = None) -> bool:
        """Stop accepting, let in-flight requests finish (bounded), close the pool. True if clean."""
        grace = self.config.http.shutdown_grace / 1000 if grace_s is None else grace_s
        await defer.gatherResults([defer.maybeDeferred(p.stopListening) for p in self.ports], consumeErrors=True)
        self.ports = []
        clean = True
        if self.core is not None:
            self.core.notifier.wake_all()  # long-polls answer now instead of holding shutdown
        if self.core is not None:
            for hook in self.core.shutdown_hooks:
                try:
                    result = hook()
                    if hasattr(result, "__await__"):
                        await result
                except Exception:
                    logger.exception("shutdown hook failed")
                    clean = False
        for site in self.sites:
            if not await site.dispatch.wait_idle(self.clock, grace):
                logger.warning("in-flight requests still running after %.1fs; cancelling them", grace)
                site.dispatch.cancel_in_flight()
                clean = False
        for site in self.sites:
            site.close_connections()
        if self.core is not None:
            cancelled = await self.core.background.shutdown()
            if cancelled:
                logger.info("cancelled %d background task(s) at shutdown", cancelled)
        self.db.close()
        return clean
