"""The federation API on a worker (issue 18's ``federation_inbound`` role): reads here, writes on their owner.

A ``federation_inbound`` instance serves ``/_matrix/federation/*`` and ``/_matrix/key/*``. It authenticates every
request (X-Matrix, keyring, server ACLs) and answers the reads from the database (events, state, state_ids,
event_auth, get_missing_events, backfill, make_join/make_leave/make_knock, queries, user keys and devices,
hierarchy, public rooms, media). The writes go over the internal HTTP API (``workers/internal_api.py``, shared
secret) to the process that owns them:

- ``PUT /send/{txnId}``: deduplicated here (the stored answer), each PDU's format, ACL and signatures checked here
  (``TransactionHandler.screen``: the owners skip that CPU-heavy check, ``verified``), then split: each room's PDUs to the room's
  event writer (:func:`room_owner`), the EDUs to main (the writer of typing, receipts, presence, to-device and
  device lists), endpoint ``federation_transaction`` ``{origin, pdus, edus, verified} -> {"pdus": results}``; the answers
  are merged. If an owner cannot be reached the transaction fails (503) and the peer retries it: processing a
  PDU or EDU twice is harmless (known events are dropped, to-device messages are deduplicated by message id).
- ``send_join``, ``send_leave``, ``send_knock``, ``invite`` (v1, v2): endpoint ``federation_request``
  ``{name, origin, params, args, body} -> {status, body}`` on the room's event writer, which runs the same servlet
  method (:meth:`FederationRoutes.run_forwarded`).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from twisted.internet import defer

from federation.inbound.transaction import TransactionHandler
from federation.transport.server.routes import FederationRoutes
from homeserver.api.errors import Codes, MatrixError
from workers.deployment import DeploymentError
from workers.roles import get_role

logger = logging.getLogger(__name__)

FORWARDED_ROUTES = frozenset({
    "federation_send_join_v2", "federation_send_leave_v2", "federation_send_knock",
    "federation_invite_v1", "federation_invite_v2",
})
TRANSACTION_ENDPOINT = "federation_transaction"
REQUEST_ENDPOINT = "federation_request"
FEDERATION_AREA = "workers.wiring.federation_events"


def persisters_apply_federation() -> bool:
    """Do event persisters wire the federation event area (so they can apply a room's PDUs themselves)?"""
    try:
        return FEDERATION_AREA in get_role("event_persister").modules
    except KeyError:
        return False


def room_owner(deployment: Any, room_id: Any) -> str:
    """The instance that applies federation writes to ``room_id``: its event persister when persisters apply
    federation PDUs, else main (which persists every room without persisters)."""
    persisters = getattr(deployment, "persisters", None)
    if isinstance(room_id, str) and persisters is not None and persisters() and persisters_apply_federation():
        return str(deployment.persister_for(room_id).name)
    return str(deployment.main().name)


def owns_federation_writes(core: Any) -> bool:
    return core.deployment is not None and core.role in ("main", "event_persister")


def serve_owner(core: Any, routes: FederationRoutes, transactions: TransactionHandler) -> None:
    """On a process that owns federation writes: the internal endpoints a ``federation_inbound`` worker calls."""
    api = getattr(core, "internal_api", None)
    if api is None:
        return
    built = {"done": False}

    def ensure_routes() -> None:
        if not built["done"]:  # the servlets register their handlers when a federation router is built
            built["done"] = True
            if not routes.handlers or "federation_send_join_v2" not in routes.handlers:
                core.build_router(["federation"])

    async def transaction(body: dict[str, Any]) -> dict[str, Any]:
        origin = body.get("origin")
        if not isinstance(origin, str) or not origin:
            raise MatrixError(400, Codes.BAD_JSON, "origin (string) is required")
        # "verified": the forwarding process of this deployment (shared secret) checked the signatures already
        return await transactions.process(origin, body.get("pdus") or [], body.get("edus") or [],
                                          verified=body.get("verified") is True)

    async def request(body: dict[str, Any]) -> dict[str, Any]:
        name, origin, params, args = body.get("name"), body.get("origin"), body.get("params"), body.get("args")
        if name not in FORWARDED_ROUTES or not isinstance(origin, str) or not isinstance(params, dict):
            raise MatrixError(400, Codes.BAD_JSON, "name (a forwarded federation route), origin and params are required")
        ensure_routes()
        status, answer = await routes.run_forwarded(name, origin, {str(k): str(v) for k, v in params.items()},
                                                    args if isinstance(args, dict) else {}, body.get("body"))
        return {"status": int(status), "body": answer}

    api.register(TRANSACTION_ENDPOINT, transaction)
    api.register(REQUEST_ENDPOINT, request)


INTERNAL_PART_BYTES = 3 * 1024 * 1024  # below the internal API's body limit (4 MiB), with room for the envelope


def split_for_internal(pdus: list[Any], edus: list[Any], limit: int = INTERNAL_PART_BYTES) -> list[tuple[list[Any], list[Any]]]:
    """A transaction's part for one owner, cut (in order) into pieces whose JSON fits the internal API's body limit
    (a federation transaction may be up to 10 MB: 50 PDUs and 100 EDUs of up to 64 KiB each)."""
    pieces: list[tuple[list[Any], list[Any]]] = []
    cur_p: list[Any] = []
    cur_e: list[Any] = []
    size = 0
    for kind, item in [("p", x) for x in pdus] + [("e", x) for x in edus]:
        n = len(json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode("utf-8")) + 1
        if (cur_p or cur_e) and size + n > limit:
            pieces.append((cur_p, cur_e))
            cur_p, cur_e, size = [], [], 0
        (cur_p if kind == "p" else cur_e).append(item)
        size += n
    if cur_p or cur_e or not pieces:
        pieces.append((cur_p, cur_e))
    return pieces


def forward_writes(core: Any, routes: FederationRoutes, transactions: TransactionHandler) -> None:
    """On a ``federation_inbound`` worker (and on main when event persisters own the rooms): hand every federation
    write to its owner; what this process owns itself runs here."""
    from workers.internal_api import InternalClient

    deployment = core.deployment
    me = core.instance
    if me != deployment.main().name and (not deployment.main().internal or not deployment.shared_secret):
        raise DeploymentError(f"instances.{deployment.main().name}.internal and shared_secret: a federation_inbound instance "
                              "forwards federation writes to main's internal API")
    client = InternalClient(core.reactor, core.clock, deployment)
    core.on_shutdown(client.close)
    main = deployment.main().name

    async def forward_transaction(origin: str, pdus: list[Any], edus: list[Any]) -> dict[str, Any]:
        # format, ACL and signature checks here (the CPU-heavy part), so the owners only apply what passed
        passed, results = await transactions.screen(origin, pdus)
        parts: dict[str, tuple[list[Any], list[Any]]] = {}
        for pdu in passed:
            owner = room_owner(deployment, pdu.get("room_id") if isinstance(pdu, dict) else None)
            parts.setdefault(owner, ([], []))[0].append(pdu)
        if edus:
            parts.setdefault(main, ([], []))[1].extend(edus)
        if not parts:
            return {"pdus": results}
        async def deliver(inst: str, p: list[Any], e: list[Any]) -> dict[str, Any]:
            if inst == me:
                return await transactions.process(origin, p, e, verified=True)
            merged: dict[str, Any] = {}
            for cp, ce in split_for_internal(p, e):  # one after the other: a room's PDUs stay in order
                answer = await client.call(inst, TRANSACTION_ENDPOINT, {"origin": origin, "pdus": cp, "edus": ce, "verified": True})
                got = answer.get("pdus") if isinstance(answer, dict) else None
                if isinstance(got, dict):
                    merged.update(got)
            return {"pdus": merged}

        calls = [defer.ensureDeferred(deliver(inst, p, e)) for inst, (p, e) in parts.items()]
        try:
            answers = await defer.gatherResults(calls, consumeErrors=True)
        except defer.FirstError as e:
            raise e.subFailure.value from None  # a MatrixError (503 when the owner is down): the peer retries
        for answer in answers:
            got = answer.get("pdus") if isinstance(answer, dict) else None
            if isinstance(got, dict):
                results.update(got)
        return {"pdus": results}

    async def forward_request(name: str, origin: str | None, params: dict[str, str], request: Any) -> Any:
        body = request.json()
        owner = room_owner(deployment, params.get("room_id"))
        if owner == me:
            return await routes.run_forwarded(name, origin, params, request.args, body)
        answer = await client.call(owner, REQUEST_ENDPOINT, {"name": name, "origin": origin, "params": params,
                                                              "args": request.args, "body": body})
        return int(answer.get("status", 200)), answer.get("body")

    transactions.forward = forward_transaction
    routes.forward = forward_request
    routes.forwarded = FORWARDED_ROUTES


MEMBERSHIP_ENDPOINT = "federation_membership"
MEMBERSHIP_OPS = ("join", "knock", "invite", "leave_unknown_room")


class ForwardedRemoteMembership:
    """``membership.remote`` of a process that does not write the room (main with event persisters): our users'
    joins, knocks, invites and leaves of rooms on other servers run on the room's persister (endpoint
    ``federation_membership``), which makes the federation requests and persists the result; the answer comes back
    once this process's events stream has reached what was written (read your writes)."""

    def __init__(self, core: Any, local: Any) -> None:
        self._core = core
        self._local = local  # this process's own FederatedMembership, for rooms it owns
        self._client: Any = None

    async def _call(self, room_id: str, op: str, args: list[Any]) -> Any:
        core = self._core
        owner = room_owner(core.deployment, room_id)
        if owner == core.instance:
            return await getattr(self._local, op)(*args)
        if self._client is None:
            from workers.internal_api import InternalClient

            self._client = InternalClient(core.reactor, core.clock, core.deployment)
            core.on_shutdown(self._client.close)
        answer = await self._client.call(owner, MEMBERSHIP_ENDPOINT, {"op": op, "args": args})
        position = answer.get("position")
        writer = core.__dict__.get("room_writer")
        if isinstance(position, int) and writer is not None:
            await writer.waiter.wait_for(position)
        return answer.get("result")

    async def join(self, room_id: str, user_id: str, servers: list[str], content: dict[str, Any]) -> Any:
        return await self._call(room_id, "join", [room_id, user_id, list(servers), content])

    async def knock(self, room_id: str, user_id: str, servers: list[str], content: dict[str, Any]) -> Any:
        return await self._call(room_id, "knock", [room_id, user_id, list(servers), content])

    async def invite(self, room_id: str, sender: str, target: str, content: dict[str, Any]) -> Any:
        return await self._call(room_id, "invite", [room_id, sender, target, content])

    async def leave_unknown_room(self, room_id: str, user_id: str) -> Any:
        return await self._call(room_id, "leave_unknown_room", [room_id, user_id])


def serve_remote_membership(core: Any, local: Any) -> None:
    """On an event persister: run the remote membership changes other processes forward for its rooms."""
    api = getattr(core, "internal_api", None)
    if api is None:
        return

    async def membership(body: dict[str, Any]) -> dict[str, Any]:
        op, args = body.get("op"), body.get("args")
        if op not in MEMBERSHIP_OPS or not isinstance(args, list) or not args or not isinstance(args[0], str):
            raise MatrixError(400, Codes.BAD_JSON, f"op (one of {', '.join(MEMBERSHIP_OPS)}) and args are required")
        result = await getattr(local, op)(*args)
        snap = core.room_cache.peek(args[0])
        position = snap.last_stream if snap is not None else core.streams["events"].current()
        return {"result": result, "position": int(position)}

    api.register(MEMBERSHIP_ENDPOINT, membership)
