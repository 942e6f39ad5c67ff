"""Federation transport area (fednet): outbound client, discovery, keyring + notary, inbound X-Matrix auth, ACLs.

Comes before e2e and media in the wiring list (they read ``core.federation_e2e_keys`` etc.).

Exposes on the core:
  core.federation_client     federation.transport.client.FederationClient  (signed outbound requests)
  core.federation_discovery  federation.transport.discovery.Discovery
  core.keyring               federation.keys.keyring.Keyring  (get_keys, verify_json, verify_events, notary_query)
  core.federation_auth       federation.transport.server.auth.FederationAuth  (authenticate(request) -> origin,
                             add_origin_listener(fn))
  core.federation_routes     federation.transport.server.routes.FederationRoutes
                             (add(router, method, pattern, handler, name, room_param=...), check_acl, is_allowed)
  core.federation_sender     federation.outbound.sender.FederationSender (persister hook installed here;
                             send_edu(dest, type, content, key), wake(dest), on_remote_contact(origin))
  core.federation_outbound_store  FederationOutboundStore (add_edus_txn(txn, now_ms, [(dest, type, content)]))
Serves: POST/GET /_matrix/key/v2/query (notary) on the keys and federation resources;
        GET /_matrix/federation/v1/query/profile, /query/directory, GET+POST /publicRooms,
        /user/keys/query|claim, /user/devices/{userId}. Sets ProfileHandler.remote and DirectoryHandler.remote.
"""

from __future__ import annotations

import logging
from typing import Any

from federation.edus.device_lists import FederationDeviceLists
from federation.edus.dispatcher import EduDispatcher
from federation.edus.e2e import FederationKeys, UserKeysServlet
from federation.edus.ephemeral import EphemeralEdus
from federation.edus.presence import FederationPresence
from federation.edus.remote_device_lists import SWEEP_INTERVAL_S, RemoteDeviceLists
from federation.edus.to_device import FederationToDevice
from federation.keys.keyring import Keyring
from federation.keys.notary import NotaryServlet
from federation.outbound.sender import FederationSender
from federation.transport.client import FederationClient
from federation.transport.discovery import Discovery, twisted_srv_lookup
from federation.transport.server.auth import FederationAuth
from federation.media import FederationMediaServlet, FederationMediaSource
from federation.remote_queries import RemoteQueries
from federation.transport.server.queries import DirectoryQueryServlet, HierarchyServlet, ProfileQueryServlet
from federation.transport.server.routes import FederationRoutes
from homeserver.http.outbound import IpFilter, OutboundError, OutboundHttpClient, tls_trust_root
from storage.stores.federation_outbound import FederationOutboundStore
from storage.stores.remote_device_lists import RemoteDeviceListStore
from storage.stores.server_keys import ServerKeyStore
from workers.core import Core
from workers.federation_sharding import RemoteFederationSender, attach_commands, follow_events, runs_sender, sender_position_name

logger = logging.getLogger(__name__)


class _RoomAcls:
    """RoomAclSource over the rooms area: the content of the current m.room.server_acl event."""

    def __init__(self, core: Core) -> None:
        self._core = core

    async def server_acl(self, room_id: str) -> dict[str, Any] | None:
        rooms = getattr(self._core, "room_cache", None)
        events = getattr(self._core, "event_store", None)
        if rooms is None or events is None:
            return None
        try:
            snap = await rooms.get(room_id)
        except Exception:  # unknown room: nothing to enforce here (the handler answers 404)
            return None
        event_id = snap.state.get(("m.room.server_acl", ""))
        if not event_id:
            return None
        row = await events.get_event(event_id)
        content = getattr(row, "content", None)
        return content if isinstance(content, dict) else None


class _RoomServers:
    """RoomServers over the rooms area's snapshots: servers with joined members now (cached per room until
    a membership event of the room passes the sender's hook, and for at most a minute)."""

    def __init__(self, core: Core) -> None:
        self._core = core
        self._cache: dict[str, tuple[float, set[str], Any]] = {}

    def invalidate(self, rows: Any) -> None:
        for row in rows:
            if row.type == "m.room.member":
                self._cache.pop(row.room_id, None)

    def cached_servers(self, room_id: str) -> set[str] | None:
        """The cached answer of :meth:`servers_in_room` if it is still valid, else None (no await: the federation
        sender's fast path for rooms without other servers)."""
        hit = self._cache.get(room_id)
        if hit is None or hit[0] <= self._core.clock.time():
            return None
        rooms = getattr(self._core, "room_cache", None)
        if rooms is None or rooms.peek(room_id) is not hit[2]:
            return None
        return hit[1]

    async def servers_in_room(self, room_id: str) -> set[str]:
        now = self._core.clock.time()
        rooms = getattr(self._core, "room_cache", None)
        if rooms is None:
            return set()
        try:
            snap = await rooms.get(room_id)
        except Exception:
            return set()
        hit = self._cache.get(room_id)
        # Only for the same snapshot: a sender worker sees no membership rows of other servers, but replication
        # replaces the room's snapshot on every state change.
        if hit is not None and hit[0] > now and hit[2] is snap:
            return hit[1]
        servers = {u.partition(":")[2] for u in snap.joined()}
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[room_id] = (now + 60, servers, snap)
        return servers


class _Membership:
    def __init__(self, core: Core, sender: Any) -> None:
        self._core = core
        self._sender = sender  # its RoomServers: one answer to "who is in the room" for PDUs and EDUs

    async def is_joined(self, user_id: str, room_id: str) -> bool:
        rooms = getattr(self._core, "room_cache", None)
        if rooms is None:
            return False
        try:
            snap = await rooms.get(room_id)
        except Exception:
            return False
        return snap.membership_of(user_id) == "join"

    async def servers_in_room(self, room_id: str) -> set[str]:
        return await self._sender.room_servers.servers_in_room(room_id)


def _wire_edus(core: Core, sender: Any, room_servers: _RoomServers, routes: FederationRoutes, client: FederationClient,
               sending: bool = True) -> None:
    """EDUs in (the dispatcher fedcore's /send calls) and out (typing, receipts, to-device), e2e keys over federation."""
    dispatcher = EduDispatcher()
    core.federation_edu_dispatcher = dispatcher
    to_device = FederationToDevice(core.server_name, FederationOutboundStore.add_edus_txn, sender.wake, lambda: getattr(core, "to_device", None))
    core.federation_to_device = to_device
    dispatcher.register("m.direct_to_device", to_device.on_edu)
    ephemeral = EphemeralEdus(core.server_name, getattr(core, "typing", None), getattr(core, "receipts", None),
                              _Membership(core, sender), sender.send_edu, routes.is_allowed)
    dispatcher.register("m.typing", ephemeral.on_typing)
    dispatcher.register("m.receipt", ephemeral.on_receipt)
    if sending:  # outbound typing/receipts: queued where the sender runs (a sender worker follows those streams)
        core.notifier.add_listener(ephemeral.on_notify)
    remote_keys = FederationKeys(client, core.clock)
    core.federation_e2e_keys = remote_keys

    async def sharing(user_id: str) -> set[str]:
        store = getattr(core, "room_store", None)
        return set(await store.get_users_sharing_rooms(user_id)) if store is not None else set()

    presence = FederationPresence(core.server_name, getattr(core, "presence", None), sharing, sender.send_edu,
                                  core.config.federation.send_presence)
    dispatcher.register("m.presence", presence.on_edu)
    if sending:
        core.notifier.add_listener(presence.on_notify)
    async def mark_changed(user_id: str) -> None:
        handler = getattr(core, "device_lists", None)
        if handler is not None:
            await handler.mark_changed(user_id)

    tracker = RemoteDeviceLists(core.server_name, RemoteDeviceListStore(core.db), core.clock, remote_keys.devices, mark_changed)
    remote_keys.tracker = tracker
    core.remote_device_lists = tracker
    persister = getattr(core, "persister", None)
    if persister is not None:
        persister.add_hook(tracker.on_events)
    # the retry/untrack sweep: a job no dedicated role names, so main runs it (a background instance does not
    # wire federation); resyncs triggered by updates run wherever the EDUs are handled
    core.every("remote_device_list_sweep", tracker.sweep, SWEEP_INTERVAL_S)
    device_lists = FederationDeviceLists(core.server_name, sender.wake, lambda: getattr(core, "device_lists", None), tracker)
    core.federation_device_lists = device_lists  # the e2e area installs it as DeviceListHandler.remote_outbox
    dispatcher.register("m.device_list_update", device_lists.on_device_list_update)
    dispatcher.register("m.signing_key_update", device_lists.on_signing_key_update)

    def register_user_keys(router: Any) -> None:
        keys = getattr(core, "e2e_keys", None)
        if keys is not None:
            UserKeysServlet(routes, keys, core.server_name).register(router)

    core.on_resource("federation", register_user_keys)


def _well_known_fetcher(http: OutboundHttpClient) -> Any:
    async def fetch(hostname: str) -> tuple[int, dict[str, str], bytes]:
        try:
            resp = await http.request("GET", f"https://{hostname}/.well-known/matrix/server", max_response=50 * 1024, timeout_s=10)
        except OutboundError as e:
            raise ValueError(str(e)) from None
        headers = {k.decode("latin-1").lower(): v[-1].decode("latin-1") for k, v in resp.headers.getAllRawHeaders()}
        return resp.status, headers, resp.body

    return fetch


def wire(core: Core) -> None:
    fed = core.config.federation
    trust = tls_trust_root(fed.extra_ca_files)
    ip_filter = IpFilter(fed.ip_range_blacklist, fed.ip_range_whitelist)
    well_known_http = OutboundHttpClient(core.reactor, fed.ip_range_blacklist, fed.ip_range_whitelist, 10.0, 50 * 1024, fed.extra_ca_files)
    discovery = Discovery(core.clock, _well_known_fetcher(well_known_http), twisted_srv_lookup(core.reactor))
    allowed_domains = set(fed.domain_whitelist)

    def domain_allowed(server: str) -> bool:
        return not allowed_domains or server in allowed_domains

    client = FederationClient(
        core.reactor, core.server_name, core.signing_key, discovery, ip_filter, trust,
        timeout_s=fed.request_timeout / 1000, max_response=fed.max_response_size, enabled=fed.enabled,
        destination_allowed=domain_allowed,
    )
    key_server = getattr(core, "key_server", None)
    key_store = ServerKeyStore(core.db)
    keyring = Keyring(
        core.reactor, core.clock, key_store, client, core.server_name, core.signing_key,
        old_keys=core.config.old_signing_keys, trusted_key_servers=fed.trusted_key_servers,
        own_keys_json=key_server.server_keys_json if key_server is not None else None, verify_threads=fed.verify_threads,
    )
    auth = FederationAuth(core.server_name, keyring, core.clock, domain_allowed)
    routes = FederationRoutes(auth, _RoomAcls(core))

    core.federation_client = client
    core.federation_discovery = discovery
    core.keyring = keyring
    core.federation_auth = auth
    core.federation_routes = routes

    room_servers = _RoomServers(core)
    outbound_store = FederationOutboundStore(core.db, sender_position_name(core))
    sending = runs_sender(core)
    sender: Any
    if sending:
        deployment = core.deployment
        worker = core.role == "federation_sender"
        # Read events back by position when this process is not the only events writer (a sender worker, or
        # main in a deployment with event persisters): a persister hook would see only this process's events.
        follow = worker or bool(deployment is not None and deployment.of_role("event_persister"))
        events_stream = core.streams.get("events") if follow else None
        real = FederationSender(
            core.clock, outbound_store, client, core.server_name, room_servers,
            max_backoff_ms=fed.max_backoff, enabled=fed.enabled,
            owns=(lambda d: deployment.federation_sender_for(d) == core.instance) if worker else None,
            position_bound=events_stream.current if events_stream is not None else None,
            fallback_position="events" if worker else None,
        )
        sender = real
        persister = getattr(core, "persister", None)
        if follow:
            follow_events(core, real)  # by replication, read back from the database
        else:
            if persister is not None:
                async def on_events(rows: Any) -> None:
                    room_servers.invalidate(rows)
                    await real.on_events(rows)

                persister.add_hook(on_events)
            core.on_startup(real.start)
            if core.deployment is not None:  # main, sending for a deployment without sender instances
                core.on_startup(lambda: attach_commands(core, real))
    else:
        sender = RemoteFederationSender(core, room_servers)  # a sender worker sends; this process only tells it
    core.federation_sender = sender
    core.federation_outbound_store = outbound_store
    auth.add_origin_listener(sender.on_remote_contact)

    _wire_edus(core, sender, room_servers, routes, client, sending)

    # media: remote media for local clients (media area reads core.remote_media_source), local media served
    core.remote_media_source = FederationMediaSource(client, well_known_http)

    def register_media(router: Any) -> None:
        repository = getattr(core, "media_repository", None)
        if repository is not None and core.config.media.enabled:
            FederationMediaServlet(routes, repository, core.server_name).register(router)

    core.on_resource("federation", register_media)

    notary = NotaryServlet(keyring, core.clock)
    core.on_resource("keys", notary.register)
    core.on_resource("federation", notary.register)
    remote_queries = RemoteQueries(client, core.clock)
    core.federation_queries = remote_queries
    profiles = getattr(core, "profiles", None)
    if profiles is not None:
        profiles.remote = remote_queries
        core.on_resource("federation", ProfileQueryServlet(routes, profiles, core.server_name).register)
    summaries = getattr(core, "room_summary", None)
    if summaries is not None and hasattr(summaries, "hierarchy_for_server"):
        summaries.remote = remote_queries
        core.on_resource("federation", HierarchyServlet(routes, summaries).register)
    directory = getattr(core, "directory", None)
    if directory is not None:
        directory.remote = remote_queries
        core.on_resource("federation", DirectoryQueryServlet(routes, directory, room_servers, core.server_name).register)

    async def stop() -> None:
        await sender.stop()
        keyring.stop()
        await client.close()
        await well_known_http.close()

    core.on_shutdown(stop)
