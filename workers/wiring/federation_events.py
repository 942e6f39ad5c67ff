"""Federation, event side (fedcore): inbound /send, the PDU receipt checks, gap filling, serving events.

Serves /send, /event, /state, /state_ids, /event_auth, /get_missing_events and /backfill.
Comes after federation_transport (it uses core.federation_client, core.keyring, core.federation_routes) and
before e2e and media. Exposes on the core:
  core.federation_event_store  storage.stores.federation_events.FederationEventStore
  core.federation_events       federation.inbound.events.FederationEventHandler (on_pdu, resolve)
  core.federation_transactions federation.inbound.transaction.TransactionHandler
EDUs received in transactions go to ``core.federation_edu_dispatcher`` (``on_edu(origin, edu_type, content)``,
set by fednet's EDU area, looked up at call time so the wiring order does not matter).
"""

from __future__ import annotations

import logging
from typing import Any

from federation.inbound.backfill import Backfiller
from federation.inbound.events import FederationEventHandler
from federation.inbound.gaps import GapFiller
from federation.inbound.transaction import TransactionHandler, TransactionServlet
from federation.membership.invites import (
    InviteServlet,
    LeaveServlet,
    RemoteInviter,
    RemoteLeaver,
)
from federation.membership.joins import JoinServlet, RemoteJoiner
from federation.membership.knocks import KnockServlet, RemoteKnocker
from federation.membership.remote import FederatedMembership
from federation.server.events_api import EventsServlet
from storage.stores.federation_events import FederationEventStore
from workers.core import Core
from workers.federation_inbound import (
    ForwardedRemoteMembership,
    forward_writes,
    owns_federation_writes,
    persisters_apply_federation,
    serve_owner,
    serve_remote_membership,
)

logger = logging.getLogger(__name__)


class _LateEduDispatcher:
    def __init__(self, core: Core) -> None:
        self._core = core

    async def on_edu(self, origin: str, edu_type: str, content: Any) -> None:
        target = getattr(self._core, "federation_edu_dispatcher", None)
        if target is None:
            logger.debug("EDU %s from %s ignored: no EDU dispatcher", edu_type, origin)
            return
        await target.on_edu(origin, edu_type, content)


def _authoriser(server_name: str, membership: Any) -> Any:
    """A local user who can invite, to authorise a remote user's restricted join (the membership area's rule)."""
    from homeserver.handlers.event_creation import Draft

    async def pick(snap: Any) -> str | None:
        return await membership._pick_authoriser(Draft.of(snap), snap)

    return pick


def wire(core: Core) -> None:
    client = getattr(core, "federation_client", None)
    keyring = getattr(core, "keyring", None)
    routes = getattr(core, "federation_routes", None)
    if client is None or keyring is None or routes is None:
        raise RuntimeError("workers.wiring.federation_events needs workers.wiring.federation_transport before it")
    store = FederationEventStore(core.db)
    handler = FederationEventHandler(core.server_name, core.persister, core.room_cache, store, core.state_store, keyring)
    handler.gaps = GapFiller(handler, client)
    transactions = TransactionHandler(handler, store, routes, core.clock, _LateEduDispatcher(core))
    core.federation_event_store = store
    core.federation_events = handler
    core.federation_transactions = transactions
    messages = getattr(core, "messages", None)
    if messages is not None and hasattr(messages, "backfiller"):
        messages.backfiller = Backfiller(core.server_name, handler, client)
    core.on_resource("federation", TransactionServlet(routes, transactions).register)
    membership = getattr(core, "membership", None)
    authoriser = None
    if membership is not None:
        joiner = RemoteJoiner(core.server_name, core.signing_key, core.clock, client, handler)
        inviter = RemoteInviter(core.server_name, core.signing_key, core.clock, client, handler, core.event_creation,
                                membership.stripped_state)
        leaver = RemoteLeaver(core.server_name, core.signing_key, core.clock, client, handler)
        knocker = RemoteKnocker(core.server_name, core.signing_key, core.clock, client, handler)
        membership.remote = FederatedMembership(joiner, inviter, leaver, store, knocker)
        dep = core.deployment
        if dep is not None and dep.of_role("event_persister") and persisters_apply_federation():
            if core.role == "event_persister":
                serve_remote_membership(core, membership.remote)
            else:  # the room's persister joins, knocks, invites and leaves for us
                membership.remote = ForwardedRemoteMembership(core, membership.remote)
        directory = getattr(core, "directory", None)
        if directory is not None and hasattr(directory, "get_alias"):
            membership.directory = directory
        authoriser = _authoriser(core.server_name, membership)
        core.on_resource("federation", InviteServlet(routes, handler, core.server_name, core.signing_key,
                                                     membership.invite_checks).register)
    core.on_resource("federation", LeaveServlet(routes, handler, core.clock).register)
    core.on_resource("federation", KnockServlet(routes, handler, core.clock).register)
    core.on_resource("federation", JoinServlet(routes, handler, core.server_name, core.signing_key, core.clock,
                                               authoriser).register)
    core.on_resource("federation", EventsServlet(routes, store, core.state_store, core.room_cache, core.server_name,
                                                 core.clock).register)
    # several processes: a federation_inbound worker forwards the writes; their owners serve them internally
    if core.deployment is not None:
        if core.role == "federation_inbound":
            forward_writes(core, routes, transactions)
        elif owns_federation_writes(core):
            serve_owner(core, routes, transactions)
            if core.role == "main" and core.deployment.of_role("event_persister") and persisters_apply_federation():
                forward_writes(core, routes, transactions)  # the rooms' PDUs belong to their persisters
